#!/usr/bin/env bash
# Mutation testing of palisade's pure cores (cargo-mutants). Each group of
# source files is mutated and tested against the tests that exercise it
# only: the library's unit tests and the `it` binary, filtered by module
# path. A mutant no test catches is a behaviour no test pins down.
#
#   scripts/mutants.sh                      every group (hours on 2 cores)
#   scripts/mutants.sh circuit_breaker      one group
#   MUTANTS_IN_DIFF=change.diff scripts/mutants.sh
#                                           only the lines a diff changed
#   MUTANTS_ITERATE=1 scripts/mutants.sh retry
#                                           the mutants the group's last run
#                                           did not catch (or did not reach)
#
# The mutants are made in copies of the tree (the working tree is left
# alone); MUTANTS_JOBS=n tests n at a time, each in a copy of its own
# (default 1). Results go to target/mutants/<group>/mutants.out (missed.txt
# lists the survivors). Exits non-zero if any group has a survivor.
set -euo pipefail
cd "$(dirname "$0")/.."
# The property tests run fewer cases than in CI's test step, for time.
export PROPTEST_CASES="${PROPTEST_CASES:-64}"
# (A mutant's failing case is no regression of the real code: not saved.)
export PROPTEST_DISABLE_FAILURE_PERSISTENCE=1

declare -A tests=(
  [circuit_breaker]="circuit_breaker:: circuit_breaker_model:: circuit_breaker_axum:: grpc_trailers::"
  [rate_limit]="rate_limit:: rate_limit_model:: rate_limit_http:: rate_limit_axum:: rate_limit_leaky::"
  [retry]="retry:: retry_model:: retry_http:: retry_body:: retry_tower::"
  [bulkhead]="bulkhead:: bulkhead_model::"
  [classify]="classify:: grpc_trailers::"
  [adaptive]="adaptive:: adaptive_throttle::"
  [hedge]="hedge::"
  [chaos]="chaos::"
  [fallback]="fallback:: fallback_alternate:: fallback_cached::"
)

# Tests of every layer that any group's code may fail: live reconfiguration,
# hostile input, the stack, events and metrics (not the million-key flood:
# half a minute a mutant).
common="reconfigure:: hardening:: stack:: observe --skip hardening::key_flood"

if [ "$#" -gt 0 ]; then groups=("$@"); else groups=("${!tests[@]}"); fi
status=0
for group in "${groups[@]}"; do
  filters="${tests[$group]:?unknown group: $group}"
  args=(--file "src/$group/*.rs" --output "target/mutants/$group" --no-shuffle
    --jobs "${MUTANTS_JOBS:-1}")
  if [ -n "${MUTANTS_ITERATE:-}" ]; then
    args+=(--iterate)
  fi
  if [ -n "${MUTANTS_IN_DIFF:-}" ]; then
    # A group the diff does not touch has nothing to mutate.
    grep -q "^+++ b/src/$group/[^/]*\.rs" "$MUTANTS_IN_DIFF" || continue
    args+=(--in-diff "$MUTANTS_IN_DIFF")
  fi
  mkdir -p "target/mutants/$group"
  # cargo-mutants: 0 every mutant caught, 2 some missed, 3 some made the
  # tests hang (caught: the tests did not pass), else it could not run.
  code=0
  # shellcheck disable=SC2086 # the filters are words
  cargo mutants "${args[@]}" -- -- $filters $common || code=$?
  case "$code" in
    0 | 3) ;;
    2)
      echo "survivors in $group:"
      cat "target/mutants/$group/mutants.out/missed.txt"
      status=2
      ;;
    *) exit "$code" ;;
  esac
done
exit "$status"
