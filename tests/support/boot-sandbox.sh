#!/usr/bin/env bash
# Boots a real systemd as PID 1 in its own PID, mount, cgroup, UTS and IPC
# namespaces, over an overlay of the machine's root. Used by the tests'
# Sandbox (tests/support/sandbox.rs); see shared TESTBED.md.
#
#   boot-sandbox.sh DIR </pipe from the caller>
#
# DIR holds upper/ and work/ (the overlay's writable layer, kept across
# reboots so installed units persist), pid (the host PID of the sandbox's
# systemd, written before it starts) and console.log (what systemd writes to
# its console). The sandbox lives until this script's stdin closes: the
# caller closes it to stop the sandbox, and the kernel closes it if the
# caller dies, so a killed test run leaks no systemd. Then the script kills
# the sandbox, waits for it and removes its cgroups.
#
# Never boot systemd over the real root: its tmpfiles setup would empty the
# machine's /tmp. Everything it writes here lands in DIR/upper.
set -euo pipefail

say() { printf 'boot-sandbox: %s\n' "$*"; }

# The outer half runs in the machine's namespaces. It gives the sandbox a
# cgroup of its own in every hierarchy before entering the new namespaces:
# without that, every sandbox's systemd would see the same cgroup root, and
# two sandboxes would manage (and kill) each other's system.slice.
outer() {
  local dir=$1 id line hier ctrls path mnt cg f child
  local -a lines own=() home=()
  id=unitgen-sandbox-$(basename "$dir")-$$
  rm -f "$dir/pid"
  # Read the list first: it changes as this shell moves.
  mapfile -t lines </proc/self/cgroup
  for line in "${lines[@]}"; do
    IFS=: read -r hier ctrls path <<<"$line"
    if [[ $hier == 0 ]]; then
      mnt=$(findmnt -rn -t cgroup2 -o TARGET | head -n1)
    else
      mnt=$(cgroup_v1_mount "$ctrls")
    fi
    [[ -n $mnt ]] || continue
    cg="$mnt${path%/}/$id"
    mkdir -p "$cg"
    own+=("$cg")
    home+=("$mnt$path")
    # cpuset v1 takes no task until the group has cpus and mems.
    for f in cpuset.cpus cpuset.mems; do
      if [[ -e $cg/$f && -z $(<"$cg/$f") ]]; then
        cat "$cg/../$f" >"$cg/$f"
      fi
    done
    echo $$ >"$cg/cgroup.procs"
  done

  unshare --mount --propagation private --pid --fork --kill-child=SIGKILL \
    --cgroup --uts --ipc "$0" --inner "$dir" </dev/null &
  child=$!
  # Back home, so that the sandbox's cgroups can be removed at the end.
  for cg in "${home[@]}"; do
    echo $$ >"$cg/cgroup.procs"
  done

  while read -r _; do :; done || true
  say "stopping"
  # SIGKILL from outside: PID 1 would take SIGTERM as "re-execute".
  # (unshare exits once its child, the sandbox's PID 1, is gone.)
  if [[ -s $dir/pid ]]; then
    kill -KILL "$(<"$dir/pid")" 2>/dev/null || true
  else
    kill -KILL "$child" 2>/dev/null || true
  fi
  wait "$child" || true
  for cg in "${own[@]}"; do
    remove_cgroup "$cg"
  done
  say "stopped"
}

# Removes a cgroup and everything the sandbox's systemd made under it. The
# last processes of a killed namespace may take a moment to leave.
remove_cgroup() {
  local cg=$1 try
  for ((try = 0; try < 50; try++)); do
    [[ -d $cg ]] || return 0
    find "$cg" -depth -type d -exec rmdir {} + 2>/dev/null || true
    sleep 0.1
  done
  say "could not remove cgroup $cg"
}

# The mount point of the cgroup v1 hierarchy holding controllers $1
# ("memory", "cpu,cpuacct", "name=systemd").
cgroup_v1_mount() {
  local want=$1 target opts ok c
  while read -r target opts; do
    ok=1
    for c in ${want//,/ }; do
      [[ ",$opts," == *",$c,"* ]] || ok=0
    done
    if ((ok)); then
      echo "$target"
      return
    fi
  done < <(findmnt -rn -t cgroup -o TARGET,FS-OPTIONS)
}

# Units that must not run in the sandbox: they would touch the machine's
# kernel, devices or clock, or start a second copy of a host daemon.
MASKED=(
  docker.socket containerd.service
  systemd-sysctl.service systemd-binfmt.service systemd-modules-load.service
  proc-sys-fs-binfmt_misc.automount proc-sys-fs-binfmt_misc.mount
  systemd-udevd.service systemd-udev-trigger.service systemd-udev-settle.service
  systemd-udevd-control.socket systemd-udevd-kernel.socket
  systemd-tmpfiles-setup-dev.service kmod-static-nodes.service
  systemd-hwdb-update.service systemd-timesyncd.service systemd-pstore.service
  systemd-journald-audit.socket systemd-logind.service
  getty.target console-getty.service getty@tty1.service serial-getty@ttyS0.service
  sys-kernel-debug.mount sys-kernel-tracing.mount sys-kernel-config.mount
  sys-fs-fuse-connections.mount dev-hugepages.mount
)

# First boot only: a clean set of enabled units and the sandbox's own
# configuration. Later boots keep what the tests installed and enabled.
prepare_root() {
  local root=$1 etc=$1/etc/systemd/system u
  # What the machine's admin enabled (docker, etcd, timesyncd, timers ...)
  # must not start here; vendor wants under /lib stay.
  rm -rf "$etc"/*.wants "$etc"/*.requires
  for u in "${MASKED[@]}"; do
    ln -sfn /dev/null "$etc/$u"
  done
  # Units under test may Requires=docker.service: the engine is the host's.
  cat >"$etc/docker.service" <<'UNIT'
[Unit]
Description=Docker (sandbox stub: the engine is the host's, at /hostrun/docker.sock)

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/true
UNIT
  # No generators: what they make from the machine's files (its fstab, its
  # init.d scripts, the kernel's command line) is not the sandbox's, and
  # every daemon-reload of every sandbox ran all thirteen of them. A link to
  # /dev/null disables one.
  mkdir -p "$root/etc/systemd/system-generators"
  for u in "$root"/usr/lib/systemd/system-generators/*; do
    ln -sfn /dev/null "$root/etc/systemd/system-generators/${u##*/}"
  done
  # The boot's tmpfiles setup empties /tmp (`D /tmp`): over the overlay,
  # that walked every test's temporary folder on the machine at each boot.
  # Nothing in a sandbox needs an empty /tmp at boot.
  mkdir -p "$root/etc/tmpfiles.d"
  echo 'd /tmp 1777 root root -' >"$root/etc/tmpfiles.d/tmp.conf"
  mkdir -p "$root/etc/systemd/system.conf.d"
  cat >"$root/etc/systemd/system.conf.d/unitgen-sandbox.conf" <<'CONF'
[Manager]
DefaultEnvironment=DOCKER_HOST=unix:///hostrun/docker.sock
CONF
  # The default target: multi-user, so units enabled with
  # WantedBy=multi-user.target start again after a reboot.
  ln -sfn /lib/systemd/system/multi-user.target "$etc/default.target"
}

inner() {
  local dir=$1 root=$1/root hostpid _
  # /proc is still the machine's here, so this is our PID as the host sees
  # it; systemd keeps it through the execs below.
  read -r hostpid _ </proc/self/stat
  echo "$hostpid" >"$dir/pid.tmp" && mv "$dir/pid.tmp" "$dir/pid"

  mkdir -p "$dir/upper" "$dir/work" "$root"
  mount -t overlay overlay -o "lowerdir=/,upperdir=$dir/upper,workdir=$dir/work" "$root"
  mount --rbind /dev "$root/dev"
  # systemd's console output goes to a file, not to the machine's console.
  : >"$dir/console.log"
  mount --bind "$dir/console.log" "$root/dev/console"
  mount -t proc proc "$root/proc"
  # Read-only, as systemd-nspawn does: the host's kernel settings stay
  # untouched, and systemd mounts its own cgroup tree under it.
  mount --bind "$root/proc/sys" "$root/proc/sys"
  mount -o remount,bind,ro "$root/proc/sys"
  mount -t sysfs -o ro sysfs "$root/sys"
  mkdir -p "$root/hostrun"
  mount --bind /run "$root/hostrun"
  # A folder shared with the machine at the same path: what a unit writes
  # there is what the machine's Docker engine mounts into a container.
  mkdir -p "$dir/shared" "$root$dir/shared"
  mount --bind "$dir/shared" "$root$dir/shared"

  if [[ ! -e $dir/prepared ]]; then
    prepare_root "$root"
    touch "$dir/prepared"
  fi

  say "exec systemd (host pid $hostpid)"
  cd "$root"
  exec env -i container=unitgen-sandbox /usr/sbin/chroot . /lib/systemd/systemd \
    --system --log-target=journal --show-status=no
}

if [[ ${1-} == --inner ]]; then
  inner "$2"
else
  outer "$1"
fi
