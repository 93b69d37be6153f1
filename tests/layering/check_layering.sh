#!/bin/sh
# The floors of the source tree: which folder may include which. Usage: check_layering.sh SOURCE_DIR
# Every #include "FOLDER/..." of a file under one of the project's folders must name that folder
# itself or a folder its row below allows; otherwise the check prints each file, line and forbidden
# include, and exits 1.
#
#   folder        may include (besides itself)
#   core          nothing of the project
#   variants      core
#   reference     core variants               (the model's attention runs the registry's kernels)
#   plugin_host   core variants               (a plugin registers as an attention implementation)
#   twins         core reference variants
#   reports       core
#   train         core reference variants
#   verify        core reference variants plugin_host twins
#   bench         core reference variants plugin_host twins
#   fuzz          core reference reports      (its targets are the readers of reports/ and reference/)
# and one exception, for tests only:
#   verify/tests, bench/tests   also reports  (they read back what their folder wrote, as reports/ does)
set -u
root=${1:?usage: check_layering.sh SOURCE_DIR}
folders="core variants reference plugin_host twins reports train verify bench fuzz"

allowed() {
  case $1 in
    core) echo "" ;;
    variants) echo "core" ;;
    reference) echo "core variants" ;;
    plugin_host) echo "core variants" ;;
    twins) echo "core reference variants" ;;
    reports) echo "core" ;;
    train) echo "core reference variants" ;;
    verify) echo "core reference variants plugin_host twins" ;;
    bench) echo "core reference variants plugin_host twins" ;;
    fuzz) echo "core reference reports" ;;
  esac
}

pattern=$(echo "$folders" | tr ' ' '|')
status=0
checked=0
for folder in $folders; do
  [ -d "$root/$folder" ] || continue
  hits=$(cd "$root" && grep -rnoE "^[[:space:]]*#[[:space:]]*include[[:space:]]*\"($pattern)/[^\"]+\"" \
           --include='*.cpp' --include='*.hpp' --include='*.h' --include='*.c' --include='*.cc' "$folder")
  [ -n "$hits" ] || continue
  # file:line:#include "target/..."
  while IFS= read -r hit; do
    checked=$((checked + 1))
    file=${hit%%:*}
    rest=${hit#*:}
    line=${rest%%:*}
    include=$(echo "${rest#*:}" | sed -E 's/^[^"]*"([^"]+)".*/\1/')
    target=${include%%/*}
    [ "$target" = "$folder" ] && continue
    ok=0
    for a in $(allowed "$folder"); do
      [ "$target" = "$a" ] && ok=1
    done
    case $file in
      verify/tests/*|bench/tests/*) [ "$target" = reports ] && ok=1 ;;
    esac
    if [ $ok -eq 0 ]; then
      echo "$file:$line: forbidden include \"$include\": $folder may include only: $(allowed "$folder" | sed 's/^$/nothing of the project/')"
      status=1
    fi
  done <<HITS
$hits
HITS
done
if [ $checked -eq 0 ]; then
  echo "check_layering.sh: no include of the project's folders found under $root (wrong directory?)"
  exit 1
fi
[ $status -eq 0 ] && echo "layering: $checked includes of the project's folders, every one allowed"
exit $status
