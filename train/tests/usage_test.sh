#!/usr/bin/env bash
# Every bad value of one train option is a usage error: exit status 2 (not a signal, not 0 or 1), a
# message on stderr that names the option and says what it expects, and no output folder written.
#   usage_test.sh TRAIN WORK_DIR OPTION
set -u
train=$1 work=$2 option=$3
# A short run that would succeed, less the option under test.
base=()
for pair in --steps=1 --width=8 --heads=2 --ffn=8 --context=8 --batch=2 --eval-every=1 --eval-batches=1 --sample-chars=4; do
  [ "${pair%%=*}" = "$option" ] || base+=("$pair")
done
integer_bad=(-1 99999999999999999999999 18446744073709551616 nan inf abc 12abc "" 1.5 1e3 " 3" 0x10)
real_bad=(nan -nan inf -inf 1e999 abc 1.5x "" " 1")
case $option in
  --steps | --batch | --context | --width | --heads | --layers | --ffn | --threads | --eval-every | --eval-batches)
    good=2 bad=("${integer_bad[@]}" 0) ;;
  --warmup | --lora-rank | --sample-chars) good=0 bad=("${integer_bad[@]}") ;;
  --seed) good=1 bad=("${integer_bad[@]}") ;;
  --lr | --weight-decay) good=0.001 bad=("${real_bad[@]}" -1 -1e-9) ;;
  --temperature) good=0.5 bad=("${real_bad[@]}" 0 -1) ;;
  --clip | --lora-alpha) good=1 bad=("${real_bad[@]}") ;;
  *) echo "usage_test.sh: no cases for $option" >&2; exit 2 ;;
esac
# Past the option's range: each size limit, and one past the count limits.
case $option in
  --batch | --context | --width | --heads | --lora-rank) bad+=(65537) ;;
  --layers) bad+=(1025) ;;
  --ffn) bad+=(1048577) ;;
  --threads) bad+=(1025) ;;
  --steps | --warmup | --eval-every) bad+=(100000001) ;;
  --eval-batches) bad+=(1000001) ;;
  --sample-chars) bad+=(10000001) ;;
esac

failures=0
check() {  # check DESCRIPTION ARGS...: runs train with ARGS after the base options
  local what=$1
  shift
  rm -rf "$work"
  mkdir -p "$work"
  "$train" "${base[@]}" "$@" --out "$work/out" >"$work/stdout" 2>"$work/stderr"
  local status=$?
  local problem=""
  if [ "$status" -ne 2 ]; then
    problem="exit status $status, expected 2"
  elif ! grep -qF -- "$option" "$work/stderr"; then
    problem="the message does not name $option"
  elif ! grep -qE "expected|takes" "$work/stderr"; then
    problem="the message does not say what $option expects"
  elif [ -e "$work/out" ]; then
    problem="the output folder was written"
  fi
  if [ -n "$problem" ]; then
    echo "FAIL $what: $problem; stderr: $(head -c 400 "$work/stderr")"
    failures=$((failures + 1))
  else
    echo "ok   $what: $(head -n 1 "$work/stderr")"
  fi
}

for value in "${bad[@]}"; do check "$option '$value'" "$option" "$value"; done
check "$option given twice" "$option" "$good" "$option" "$good"
check "$option=VALUE given twice" "$option=$good" "$option=$good"
rm -rf "$work"
[ "$failures" -eq 0 ]
