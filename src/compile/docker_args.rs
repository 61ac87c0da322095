//! `docker_args`: extra `docker run` flags, passed on as written, except
//! those that would take the container out of its unit's hands. A unit
//! supervises its container by name (`ExecStop=docker stop NAME`, the
//! removal after it, `status`), runs it attached and removed on exit (the
//! unit's main process is `docker run --rm`, whose end is the container's),
//! and finds an instance's containers by their `unitgen.` labels (`status`,
//! `destroy`, the image they were made from); systemd restarts it, not
//! Docker.

/// The flags a unit's `docker run` depends on, with why, as `(index of the
/// offending word, message)`. Words are read as the Docker CLI reads them
/// (pflag): `--flag=value` or `--flag value`, and short flags that may be
/// joined (`-dit`) or take their value in the same word (`-lkey=value`).
pub fn supervision_conflicts(args: &[String]) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    // Where `--interactive` and `--tty` are, if given.
    let (mut interactive, mut tty) = (None, None);
    let mut words = args.iter().enumerate();
    while let Some((index, word)) = words.next() {
        // What follows `--` or a word that is not a flag is not read as
        // flags by Docker either: it is the image and its command, which
        // unitgen puts after these words anyway.
        if word == "--" || !word.starts_with('-') {
            break;
        }
        if let Some(long) = word.strip_prefix("--") {
            let (name, inline) = match long.split_once('=') {
                Some((name, value)) => (name, Some(value)),
                None => (long, None),
            };
            match name {
                "interactive" if inline != Some("false") => interactive = Some(index),
                "tty" if inline != Some("false") => tty = Some(index),
                "detach" => found.push((index, detach())),
                "rm" => found.push((index, removal())),
                "name" => found.push((index, name_flag())),
                "restart" => found.push((index, restart())),
                "label" => {
                    if let Some((at, label)) =
                        value_of(index, "--label", inline, &mut words, &mut found)
                    {
                        found.extend(own_label(&label).map(|m| (at, m)));
                    }
                }
                _ if takes_value(name) && inline.is_none() => {
                    // Its value is the next word, whatever it looks like.
                    words.next();
                }
                _ => {}
            }
            continue;
        }
        let shorts = &word[1..];
        for (offset, flag) in shorts.char_indices() {
            match flag {
                'd' => found.push((index, detach())),
                'i' => interactive = Some(index),
                't' => tty = Some(index),
                'P' => {}
                'l' => {
                    let rest = &shorts[offset + 1..];
                    let inline = (!rest.is_empty()).then(|| rest.strip_prefix('=').unwrap_or(rest));
                    if let Some((at, label)) = value_of(index, "-l", inline, &mut words, &mut found)
                    {
                        found.extend(own_label(&label).map(|m| (at, m)));
                    }
                    break;
                }
                // Any other short flag takes a value: the rest of the word,
                // or the next one.
                _ => {
                    if offset + flag.len_utf8() == shorts.len() {
                        words.next();
                    }
                    break;
                }
            }
        }
    }
    if let (Some(i), Some(t)) = (interactive, tty) {
        found.push((i.max(t), interactive_tty()));
    }
    found
}

/// The container paths `args` mount something at (`--volume`/`-v`,
/// `--mount`'s target, `--tmpfs`), words read as Docker reads them; None
/// when they take another container's mounts (`--volumes-from`), whose
/// paths only that container knows.
pub(crate) fn mount_targets(args: &[String]) -> Option<Vec<String>> {
    let mut targets = Vec::new();
    let mut words = args.iter();
    while let Some(word) = words.next() {
        if word == "--" || !word.starts_with('-') {
            break;
        }
        let (name, value) = match word.strip_prefix("--") {
            Some(long) => match long.split_once('=') {
                Some((name, value)) => (name, Some(value.to_owned())),
                None if takes_value(long) => (long, words.next().cloned()),
                None => continue,
            },
            // Joined short flags: the first that takes a value takes the
            // rest of the word, or the next word.
            None => {
                let shorts = &word[1..];
                let Some((offset, flag)) =
                    (shorts.char_indices()).find(|(_, f)| !matches!(f, 'd' | 'i' | 't' | 'P'))
                else {
                    continue;
                };
                let rest = &shorts[offset + flag.len_utf8()..];
                let value = match rest {
                    "" => words.next().cloned(),
                    rest => Some(rest.strip_prefix('=').unwrap_or(rest).to_owned()),
                };
                (if flag == 'v' { "volume" } else { "" }, value)
            }
        };
        let value = value.unwrap_or_default();
        let target = match name {
            "volumes-from" => return None,
            // SOURCE:TARGET[:MODE], or only TARGET (anonymous).
            "volume" => value.split(':').nth(1).or(value.split(':').next()),
            "tmpfs" => value.split(':').next(),
            "mount" => (value.split(',')).find_map(|field| {
                let (key, target) = field.split_once('=')?;
                matches!(key.trim(), "target" | "dst" | "destination").then_some(target)
            }),
            _ => None,
        };
        targets.extend(target.map(str::to_owned));
    }
    Some(targets)
}

/// The value of the flag at `index`: written in its word (`inline`), or
/// the next word; a flag without one is reported.
fn value_of<'a>(
    index: usize,
    flag: &str,
    inline: Option<&str>,
    words: &mut impl Iterator<Item = (usize, &'a String)>,
    found: &mut Vec<(usize, String)>,
) -> Option<(usize, String)> {
    if let Some(value) = inline {
        return Some((index, value.to_owned()));
    }
    let next = words.next().map(|(at, value)| (at, value.clone()));
    if next.is_none() {
        found.push((index, format!("`{flag}` needs a value")));
    }
    next
}

fn detach() -> String {
    "`--detach` (`-d`) would end the unit's `docker run` at once, and the unit with it: the unit runs the container attached, as its main process".into()
}

fn removal() -> String {
    "`--rm` is unitgen's: each start makes a fresh container, removed when it ends, and a kept one would block the next start by its name".into()
}

fn name_flag() -> String {
    "`--name` is unitgen's: the unit stops, removes and looks at its container by the name unitgen gives it (`container_name` in compose terms is the service's alias)".into()
}

fn interactive_tty() -> String {
    "`--interactive` with `--tty`: a unit's `docker run` has no terminal, and Docker refuses to start (\"the input device is not a TTY\"); `--tty` alone gives the container a terminal whose reads wait, as compose's `stdin_open` with `tty` does".into()
}

fn restart() -> String {
    "`--restart` would make Docker restart the container behind systemd's back: use the service's `restart:` key, which systemd carries out".into()
}

/// A `unitgen.` label names the app, instance and service a container
/// belongs to, for `status` and `destroy`.
fn own_label(label: &str) -> Option<String> {
    let name = label.split_once('=').map_or(label, |(name, _)| name);
    super::syntax::is_unitgen_label(name).then(|| {
        format!(
            "the label `{label}` is unitgen's: it tells which app, instance and service a container is, for `status` and `destroy`; use `labels:` with a name of your own"
        )
    })
}

/// Long flags of `docker run` that take a value (Docker 20.10 to 28): the
/// word after one is its value, not a flag. Bool flags (`--init`,
/// `--privileged`, `--read-only`, …) are left out: they take none unless
/// written `--flag=value`. (`--rm` and `--detach` are refused in
/// `docker_args`, but read here too: a unit's own `docker run` has `--rm`.)
pub(crate) fn takes_value(name: &str) -> bool {
    !matches!(
        name,
        "rm" | "detach"
            | "init"
            | "interactive"
            | "tty"
            | "privileged"
            | "publish-all"
            | "read-only"
            | "no-healthcheck"
            | "oom-kill-disable"
            | "sig-proxy"
            | "disable-content-trust"
            | "quiet"
            | "help"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conflicts(words: &[&str]) -> Vec<usize> {
        let args: Vec<String> = words.iter().map(|w| w.to_string()).collect();
        supervision_conflicts(&args)
            .into_iter()
            .map(|(at, _)| at)
            .collect()
    }

    #[test]
    fn flags_the_unit_depends_on_are_found_in_every_form_docker_reads() {
        for (words, at) in [
            (&["-d"][..], vec![0]),
            (&["--detach"], vec![0]),
            (&["--detach=true"], vec![0]),
            (&["-dit"], vec![0, 0]),
            (&["--init", "-td"], vec![1]),
            (&["--rm=false"], vec![0]),
            (&["--name", "other"], vec![0]),
            (&["--name=other"], vec![0]),
            (&["--restart", "always"], vec![0]),
            (&["--label", "unitgen.app=other"], vec![1]),
            (&["--label=unitgen.instance=live"], vec![0]),
            (&["-l", "unitgen.service=api"], vec![1]),
            (&["-lunitgen.app=x"], vec![0]),
            (&["-il=unitgen.app=x"], vec![0]),
            (&["--shm-size=1g", "--label"], vec![1]),
            // No terminal to read from: Docker refuses both together.
            (&["-it"], vec![0]),
            (&["--interactive", "--init", "--tty"], vec![2]),
        ] {
            assert_eq!(conflicts(words), at, "{words:?}");
        }
    }

    #[test]
    fn mount_targets_are_read_in_every_form_docker_reads() {
        let targets = |words: &[&str]| {
            mount_targets(&words.iter().map(|w| w.to_string()).collect::<Vec<_>>())
        };
        assert_eq!(
            targets(&[
                "--volume=/srv:/a:ro",
                "-v",
                "name:/b",
                "-v/c",
                "-dv=/d",
                "--tmpfs",
                "/e:size=1m",
                "--mount",
                "type=volume,src=x,dst=/f",
                "--mount=type=bind,source=/srv,target=/g",
                "--label",
                "--volume=/not-a-mount",
                "--init",
            ]),
            Some(
                ["/a", "/b", "/c", "/d", "/e", "/f", "/g"]
                    .map(String::from)
                    .to_vec()
            )
        );
        assert_eq!(targets(&["--volumes-from", "other"]), None);
    }

    #[test]
    fn other_flags_and_values_that_look_like_flags_pass() {
        for words in [
            &["--shm-size=1g"][..],
            &["--label", "team=web", "-l", "tier=db"],
            // Values, not flags: a host name `-d`, an env value `--rm`.
            &["--hostname", "-d"],
            &["-e", "--rm"],
            &["-e--name"],
            &["--add-host=db:10.0.0.2", "--cap-add", "NET_ADMIN"],
            &["--init", "--privileged", "-t"],
            &["-i"],
            &["--interactive", "--tty=false"],
            // After the flags, Docker reads the image and its command.
            &["--", "-d"],
        ] {
            assert_eq!(conflicts(words), Vec::<usize>::new(), "{words:?}");
        }
    }
}
