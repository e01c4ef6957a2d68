#!/usr/bin/env bash
# The promises under load: keep every core busy and run tests meanwhile, several rounds.
#
#   bash bench/stress.sh                          # tests/reliability and tests/ui, 3 rounds
#   bash bench/stress.sh --rounds 1 tests/reliability/test_no_orphans.py
#   bash bench/stress.sh --burners 4 -- -k tui    # after --, arguments go to pytest
#
# One burner per core (stress-ng if installed, else a pure-Python busy loop). The burners are
# stopped on any exit (the trap), and the script exits non-zero if any round failed.
set -uo pipefail
cd "$(dirname "$0")/.."

rounds=3
burners=$(nproc 2>/dev/null || echo 2)
paths=()
pytest_args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) rounds="${2:?--rounds needs a number}"; shift 2 ;;
    --burners) burners="${2:?--burners needs a number}"; shift 2 ;;
    --) shift; pytest_args=("$@"); break ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    -*) echo "stress.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) paths+=("$1"); shift ;;
  esac
done
case "$rounds" in ''|*[!0-9]*) echo "stress.sh: --rounds wants a whole number, got '$rounds'" >&2; exit 2 ;; esac
case "$burners" in ''|*[!0-9]*) echo "stress.sh: --burners wants a whole number, got '$burners'" >&2; exit 2 ;; esac
[ ${#paths[@]} -eq 0 ] && paths=(tests/reliability tests/ui)

python=.venv/bin/python
[ -x "$python" ] || python=python3

# Job control: background jobs keep default signals (without it a script's `&` ignores
# SIGINT in them) and get their own process groups.
set -m
burner_pids=()
test_pid=""
stop_all() {
  if [ -n "$test_pid" ]; then
    # Ctrl-C for pytest: it tears its fixtures down, processes too. Started from a script in
    # the background, we (and so pytest) may have SIGINT ignored: then SIGTERM, then SIGKILL.
    for sig in INT TERM KILL; do
      kill -"$sig" "$test_pid" 2>/dev/null || break
      for _ in $(seq 100); do kill -0 "$test_pid" 2>/dev/null || break; sleep 0.1; done
    done
    wait "$test_pid" 2>/dev/null
    test_pid=""
  fi
  for pid in "${burner_pids[@]}"; do kill "$pid" 2>/dev/null; done
  for pid in "${burner_pids[@]}"; do wait "$pid" 2>/dev/null; done
  burner_pids=()
}
trap stop_all EXIT
trap 'trap "" INT TERM HUP; exit 130' INT TERM HUP  # cleanup is not cut short by a second signal

if [ "$burners" -gt 0 ]; then
  if command -v stress-ng >/dev/null 2>&1; then
    stress-ng --cpu "$burners" --quiet >/dev/null 2>&1 &
    burner_pids+=($!)
    how="stress-ng --cpu $burners"
  else
    for _ in $(seq "$burners"); do
      "$python" -c 'while True: pass' &
      burner_pids+=($!)
    done
    how="$burners pure-Python burners"
  fi
else
  how="no burners"
fi
echo "stress: $how, $rounds round(s) of: ${paths[*]} ${pytest_args[*]}"

logdir=$(mktemp -d "${TMPDIR:-/tmp}/stress.XXXXXX")
failed=0
for round in $(seq "$rounds"); do
  started=$(date +%s)
  # in the background and waited for, so a signal to this script is handled at once
  "$python" -m pytest -q -p no:cacheprovider "${paths[@]}" "${pytest_args[@]}" >"$logdir/round-$round.log" 2>&1 </dev/null &
  test_pid=$!
  wait "$test_pid"
  rc=$?
  test_pid=""
  summary=$(tail -n 1 "$logdir/round-$round.log")
  took=$(( $(date +%s) - started ))
  if [ "$rc" -eq 0 ]; then
    echo "round $round: pass ($summary, ${took} s)"
  else
    echo "round $round: FAIL ($summary, ${took} s); failures:"
    grep -E '^(FAILED|ERROR) ' "$logdir/round-$round.log" | sed 's/^/  /'
    echo "  full log: $logdir/round-$round.log"
    failed=$((failed + 1))
  fi
done
echo "stress: $((rounds - failed)) of $rounds round(s) passed"
[ "$failed" -eq 0 ]
