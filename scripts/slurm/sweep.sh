#!/usr/bin/env bash
# A sharded sweep on Slurm: one build job, a job array with one shard per task, and a merge-and-report
# job that runs once every shard succeeded.
#
#   bash scripts/slurm/sweep.sh --shards N --out DIR [options]
#
#   --shards N             array tasks = shards (sbatch --array=0-(N-1)), 1 <= N <= the cluster's MaxArraySize - 1
#   --out DIR              the sweep's directory: shards/I/ (each task's outputs), merged/ (the merged set
#                          and report/), logs/ (every job's output), jobs.txt; must be new or empty
#   --cpus-per-task C      CPUs of each shard task; bench runs with C threads bound to them (default 2)
#   --profile P            bench's profile, quick or full (default quick)
#   --only bench|verify    run one of the two (default both)
#   --bench-args "..."     more bench options for every shard (word-split)
#   --verify-args "..."    more verify options for every shard (word-split)
#   --build-dir DIR        the programs the shards run: a build tree or an installed bin directory
#                          (default: build/release of this source tree; installed: PREFIX/bin)
#   --no-build             use --build-dir as it is instead of submitting the build job (the default
#                          where these scripts are installed, PREFIX/share/pedestrian/scripts/slurm/)
#   --partition P, --time T, --account A   passed to every sbatch
#   --wait                 wait for the merge job and exit with its result: 0 all passed, 1 a check
#                          failed or a job failed (the message names it), 2 a usage error
#
# The nodes must see this source tree (or installation) and --out at the same paths (a shared file
# system). The build job runs in the source tree, the others in --out. Before anything is written or submitted the Slurm controller must answer (sinfo):
# otherwise the message says so and the exit status is 2.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
sweep_scripts=$(cd "$here/../sweep" && pwd)
# shellcheck source=../sweep/programs.sh
. "$sweep_scripts/programs.sh"
die() { echo "sweep.sh: $*" >&2; exit 2; }

shards='' out='' cpus=2 profile=quick only=both bench_args='' verify_args=''
if [ -f "$here/../../CMakePresets.json" ]; then  # a source tree
  source_dir=$(cd "$here/../.." && pwd) build_dir=$source_dir/build/release build=yes
else  # installed: PREFIX/share/pedestrian/scripts/slurm
  source_dir='' build_dir=$(cd "$here/../../../.." && pwd)/bin build=no
fi
wait=no
sbatch_common=()
while [ $# -gt 0 ]; do
  case "$1" in
  --no-build) build=no; shift; continue ;;
  --wait) wait=yes; shift; continue ;;
  --help | -h) sed -n '/^#   bash/,/^# Every job/p' "$0" | sed 's/^# \{0,1\}//' | sed '$d' >&2; exit 2 ;;
  esac
  [ $# -ge 2 ] || die "$1: missing value"
  case "$1" in
  --shards) shards=$2 ;;
  --out) out=$2 ;;
  --cpus-per-task) cpus=$2 ;;
  --profile) profile=$2 ;;
  --only) only=$2 ;;
  --bench-args) bench_args=$2 ;;
  --verify-args) verify_args=$2 ;;
  --build-dir) build_dir=$2 ;;
  --partition | --time | --account) sbatch_common+=("$1=$2") ;;
  *) die "unknown option '$1' (--help lists them)" ;;
  esac
  shift 2
done

[ -n "$shards" ] || die "--shards N is required"
case "$shards" in *[!0-9]* | '') die "--shards '$shards': expected a whole number >= 1" ;; esac
[ "$shards" -ge 1 ] || die "--shards $shards: expected at least 1 shard"
case "$cpus" in *[!0-9]* | '' | 0) die "--cpus-per-task '$cpus': expected a whole number >= 1" ;; esac
case "$only" in both | bench | verify) ;; *) die "--only '$only': expected bench or verify" ;; esac
case "$profile" in quick | full) ;; *) die "--profile '$profile': expected quick or full" ;; esac
[ -n "$out" ] || die "--out DIR is required"
if [ -e "$out" ] && [ -n "$(ls -A "$out" 2>/dev/null)" ]; then
  die "--out $out: not empty (an earlier sweep's shards would mix with this one's); give a new directory"
fi
if [ "$build" = no ]; then
  find_programs sweep.sh "$build_dir" || exit 2
elif [ -z "$source_dir" ]; then
  die "no source tree to build here (installed scripts): give --no-build and --build-dir"
fi
command -v sbatch >/dev/null || die "sbatch not found: this machine is not a Slurm submit host (apt-get install slurm-client)"
if ! reply=$(sinfo -h -o '%P %a' 2>&1); then
  die "Slurm is not reachable (sinfo: $(echo "$reply" | head -n 1)); is slurmctld running, and SLURM_CONF (${SLURM_CONF:-unset}) right?"
fi
max_array=$(scontrol show config 2>/dev/null | awk '$1 == "MaxArraySize" { print $3 }')
if [ -n "$max_array" ] && [ "$shards" -gt $((max_array - 1)) ]; then
  die "--shards $shards: above the cluster's MaxArraySize - 1 = $((max_array - 1))"
fi

mkdir -p "$out/logs" "$out/shards"
out=$(cd "$out" && pwd)
submit() { sbatch --parsable "${sbatch_common[@]}" "$@" | cut -d';' -f1; }

dependency=()
if [ "$build" = yes ]; then
  build_job=$(submit --job-name=ped-build --chdir="$source_dir" --cpus-per-task="$cpus" --output="$out/logs/build.out" \
    "$here/build.sbatch" "$build_dir")
  echo "build $build_job" >>"$out/jobs.txt"
  dependency=(--dependency="afterok:$build_job" --kill-on-invalid-dep=yes)
fi
array_job=$(submit --job-name=ped-shard --chdir="$out" --array="0-$((shards - 1))" --cpus-per-task="$cpus" \
  "${dependency[@]}" --output="$out/logs/shard-%a.out" "$here/shard.sbatch" "$sweep_scripts" "$out" "$build_dir" \
  "$shards" "$profile" "$only" "$bench_args" "$verify_args")
echo "shards $array_job" >>"$out/jobs.txt"
merge_job=$(submit --job-name=ped-merge --chdir="$out" --cpus-per-task=1 --dependency="afterok:$array_job" \
  --kill-on-invalid-dep=yes --output="$out/logs/merge.out" "$here/merge.sbatch" "$sweep_scripts" "$out" "$build_dir" \
  "$shards")
echo "merge $merge_job" >>"$out/jobs.txt"
echo "sweep.sh: submitted ${build_job:+build $build_job, }$shards shards as array $array_job, merge $merge_job; logs in $out/logs"

[ "$wait" = yes ] || exit 0

# The state of a job ("" once the controller has forgotten it).
state_of() { scontrol show job "$1" -o 2>/dev/null | grep -o 'JobState=[A-Z_]*' | head -n 1 | cut -d= -f2; }
while :; do
  state=$(state_of "$merge_job")
  case "$state" in
  PENDING | RUNNING | CONFIGURING | COMPLETING | SUSPENDED | REQUEUED | RESIZING | '') ;;
  *) break ;;
  esac
  if [ -z "$state" ]; then state=FORGOTTEN; break; fi
  sleep 5
done
if [ "$state" = COMPLETED ]; then
  echo "sweep.sh: merged set and report in $out/merged"
  exit 0
fi
echo "sweep.sh: merge job $merge_job ended $state" >&2
# Which step failed: the build, a shard (its log), or the merge itself.
for job in ${build_job:-} $(scontrol show job "$array_job" -o 2>/dev/null | grep -o 'JobId=[0-9]*' | cut -d= -f2); do
  line=$(scontrol show job "$job" -o 2>/dev/null) || continue
  job_state=$(echo "$line" | grep -o 'JobState=[A-Z_]*' | cut -d= -f2)
  if [ "$job_state" != COMPLETED ]; then
    echo "sweep.sh: job $job ($(echo "$line" | grep -o 'JobName=[^ ]*' | cut -d= -f2)$(echo "$line" | grep -o 'ArrayTaskId=[0-9]*' | sed 's/ArrayTaskId=/ task /')) $job_state, $(echo "$line" | grep -o 'ExitCode=[0-9:]*'), log $(echo "$line" | grep -o 'StdOut=[^ ]*' | cut -d= -f2)" >&2
  fi
done
[ "$state" != FAILED ] || echo "sweep.sh: merge log: $out/logs/merge.out" >&2
exit 1
