fn main() -> std::process::ExitCode {
    unitgen::cli::main()
}
