# Sourced by the scripts/test-package-* checks: `path_without_rust DIR EXCLUDE…` prints a PATH
# with no cargo, rustc or rustup on it, as a user without a Rust toolchain has, keeping every
# other program. A directory that holds such a program beside others (/usr/bin, once Debian's
# rustc-web is installed for the Windows build) is replaced by DIR/shadow-N: links to all of
# its programs but the Rust toolchain's. Directories equal to or under an EXCLUDE are dropped.
path_without_rust() {
  local shadow_root=$1 d f name n=0 out=""
  shift
  local -a dirs
  IFS=: read -ra dirs <<<"$PATH"
  for d in "${dirs[@]}"; do
    [ -n "$d" ] && [ -d "$d" ] || continue
    local skip=0 x
    for x in "$@"; do
      case "$d" in "$x" | "$x"/*) skip=1 ;; esac
    done
    [ "$skip" = 0 ] || continue
    case ":$out:" in *":$d:"*) continue ;; esac
    if [ -e "$d/cargo" ] || [ -e "$d/rustc" ] || [ -e "$d/rustup" ]; then
      # rustup's own directory holds nothing a user without Rust would have.
      [ -e "$d/rustup" ] && continue
      n=$((n + 1))
      local shadow="$shadow_root/shadow-$n"
      mkdir -p "$shadow"
      for f in "$d"/*; do
        name=${f##*/}
        case "$name" in
          cargo | cargo-* | rustc | rustdoc | rustup | rust-gdb* | rust-lldb | rust-analyzer | \
            rustfmt | clippy-driver) continue ;;
        esac
        ln -s "$f" "$shadow/$name"
      done
      d=$shadow
    fi
    out="${out:+$out:}$d"
  done
  printf '%s\n' "$out"
}
