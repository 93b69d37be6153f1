#!/usr/bin/env bash
# train's outputs are one set: a run killed at any point leaves the output folder holding the complete
# set of the run before it or the complete set of the killed run (once the next run has started),
# never a mix, and no temp files after the next run.
#   output_set_test.sh TRAIN WORK_DIR MODE
# MODE plot: killed while gnuplot draws (a gnuplot first in PATH kills train);
#      staged: killed with every output staged, before publishing (PED_TRAIN_KILL_AT=staged);
#      publishing: killed after the first output was moved into place (PED_TRAIN_KILL_AT=publishing);
#      plot_fails: gnuplot exits 1, so the run makes no plot and the earlier run's loss.png must go;
#      stale_temps: temp files of interrupted runs (of this and earlier versions) are removed on
#      start, files that are not train's are kept.
set -u
train=$1 work=$2 mode=$3
outputs=(loss.csv checkpoint.bin loss.gp loss.png sample.txt)
args=(--steps 4 --width 8 --heads 2 --ffn 16 --context 8 --batch 2 --eval-every 2 --eval-batches 1 --sample-chars 24)
rm -rf "$work"
mkdir -p "$work/bin"

fail() {
  echo "FAIL ($mode): $*"
  echo "output folder:"
  ls -lA "$work/out"
  exit 1
}

# same_set DIR REF: DIR holds REF's outputs (loss.csv compared without its wall-clock column, the 6th)
same_set() {
  local name
  for name in "${outputs[@]}"; do
    if [ ! -e "$2/$name" ]; then
      [ ! -e "$1/$name" ] || return 1
    elif [ "$name" = loss.csv ]; then
      cmp -s <(cut -d, -f1-5 "$1/$name") <(cut -d, -f1-5 "$2/$name") || return 1
    else
      cmp -s "$1/$name" "$2/$name" || return 1
    fi
  done
}

# only_outputs DIR: nothing in DIR but output files (no staging folder, no temp file)
only_outputs() {
  local entry name known
  for entry in "$1"/* "$1"/.[!.]*; do
    [ -e "$entry" ] || continue
    name=${entry##*/}
    known=no
    for output in "${outputs[@]}"; do [ "$name" = "$output" ] && known=yes; done
    [ "$known" = yes ] || return 1
  done
}

# The complete sets of seed 1 (the run before) and seed 2 (the interrupted run), each in its own folder.
"$train" "${args[@]}" --seed 1 --out "$work/out" >"$work/log" 2>&1 || fail "the seed 1 run failed: $(tail -n 3 "$work/log")"
cp -a "$work/out" "$work/old"
"$train" "${args[@]}" --seed 2 --out "$work/new" >"$work/log" 2>&1 || fail "the seed 2 run failed: $(tail -n 3 "$work/log")"
same_set "$work/old" "$work/new" && fail "seeds 1 and 2 made the same outputs: the test cannot tell the sets apart"

# A gnuplot that kills train, its nearest ancestor named train (whether train ran it directly or through sh).
cat >"$work/bin/gnuplot-kills-train" <<'SCRIPT'
#!/bin/sh
pid=$PPID
while [ "$pid" -gt 1 ] && [ "$(cat /proc/$pid/comm)" != train ]; do pid=$(cut -d' ' -f4 /proc/$pid/stat); done
[ "$pid" -gt 1 ] && kill -KILL "$pid"
sleep 10
SCRIPT
printf '#!/bin/sh\nexit 1\n' >"$work/bin/gnuplot-fails"
chmod +x "$work/bin/"*

case $mode in
  plot) ln -s gnuplot-kills-train "$work/bin/gnuplot"; PATH="$work/bin:$PATH" "$train" "${args[@]}" --seed 2 --out "$work/out" >"$work/log" 2>&1 ;;
  staged | publishing) PED_TRAIN_KILL_AT=$mode "$train" "${args[@]}" --seed 2 --out "$work/out" >"$work/log" 2>&1 ;;
  plot_fails)
    ln -s gnuplot-fails "$work/bin/gnuplot"
    PATH="$work/bin:$PATH" "$train" "${args[@]}" --seed 2 --out "$work/out" >"$work/log" 2>&1 || fail "the run failed: $(tail -n 3 "$work/log")"
    [ ! -e "$work/out/loss.png" ] || fail "the earlier run's loss.png is still there beside the new outputs"
    rm -f "$work/new/loss.png"
    same_set "$work/out" "$work/new" || fail "the folder does not hold the new set"
    only_outputs "$work/out" || fail "temp files left behind"
    echo "ok: without a plot the set is the new run's files and no stale loss.png"
    exit 0 ;;
  stale_temps)
    mkdir -p "$work/out/.train-staging.AbC123"
    touch "$work/out/.train-staging.AbC123/loss.csv" "$work/out/.loss.png.tmp.Xy12zW" "$work/out/.loss.csv.tmp.q1W2e3" \
      "$work/out/checkpoint.bin.tmp.4242" "$work/out/notes.txt" "$work/out/.keep"
    "$train" "${args[@]}" --seed 2 --out "$work/out" >"$work/log" 2>&1 || fail "the run failed: $(tail -n 3 "$work/log")"
    for stale in .train-staging.AbC123 .loss.png.tmp.Xy12zW .loss.csv.tmp.q1W2e3 checkpoint.bin.tmp.4242; do
      [ ! -e "$work/out/$stale" ] || fail "$stale survived the run"
      grep -qF "removed $stale" "$work/log" || fail "the removal of $stale was not reported"
    done
    [ -e "$work/out/notes.txt" ] && [ -e "$work/out/.keep" ] || fail "a file that is not train's was removed"
    rm "$work/out/notes.txt" "$work/out/.keep"
    same_set "$work/out" "$work/new" || fail "the folder does not hold the new set"
    only_outputs "$work/out" || fail "temp files left behind"
    echo "ok: stale temp files removed, other files kept"
    exit 0 ;;
  *) echo "output_set_test.sh: unknown mode $mode" >&2; exit 2 ;;
esac
status=$?
[ "$status" -eq 137 ] || fail "the run was not killed at '$mode' (exit status $status): $(tail -n 3 "$work/log")"

# Killed before the commit point: the old set is untouched under the real names.
if [ "$mode" != publishing ]; then
  same_set "$work/out" "$work/old" || fail "right after the kill the files under their real names are not the old set"
fi

# The next run's start finishes or discards what the killed run left (stopped there by PED_TRAIN_KILL_AT).
PED_TRAIN_KILL_AT=started "$train" "${args[@]}" --seed 3 --out "$work/out" >"$work/log" 2>&1
status=$?
[ "$status" -eq 137 ] || fail "the next run did not stop where asked (exit status $status)"
if [ "$mode" = publishing ]; then
  same_set "$work/out" "$work/new" || fail "after the next start the folder does not hold the complete new set"
else
  same_set "$work/out" "$work/old" || fail "after the next start the folder does not hold the complete old set"
fi
only_outputs "$work/out" || fail "temp files survive the next run's start"

# And a complete next run leaves its own complete set, nothing else.
"$train" "${args[@]}" --seed 3 --out "$work/out" >"$work/log" 2>&1 || fail "the seed 3 run failed: $(tail -n 3 "$work/log")"
only_outputs "$work/out" || fail "temp files after a complete run"
for name in loss.csv checkpoint.bin loss.gp sample.txt; do [ -s "$work/out/$name" ] || fail "$name missing"; done
if command -v gnuplot >/dev/null; then [ -s "$work/out/loss.png" ] || fail "loss.png missing"; fi
echo "ok: killed at '$mode', the folder held one complete set each time"
rm -rf "$work"
