#!/usr/bin/env bash
# with-dynalite.sh CMD...: run CMD with AWS_ENDPOINT_URL_DYNAMODB pointing
# at a DynamoDB endpoint, so the backend conformance suite runs.
#
# - AWS_ENDPOINT_URL_DYNAMODB already set: use that endpoint.
# - dynalite installed (on PATH, or in node_modules/.bin): start it on a
#   free port of 127.0.0.1 for the duration of CMD.
# - neither: run CMD without one; the DynamoDB suite skips, and says so,
#   unless WSBIND_REQUIRE_DYNAMODB=1 (CI) makes it fail.
set -euo pipefail

if [ -n "${AWS_ENDPOINT_URL_DYNAMODB:-}" ]; then
	exec "$@"
fi

dynalite=""
if command -v dynalite >/dev/null 2>&1; then
	dynalite=$(command -v dynalite)
elif [ -x node_modules/.bin/dynalite ]; then
	dynalite=node_modules/.bin/dynalite
fi
if [ -z "$dynalite" ]; then
	echo "with-dynalite: dynalite not found (npm install -g dynalite); the DynamoDB suite will skip" >&2
	exec "$@"
fi

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null || echo 18765)
log=$(mktemp)
"$dynalite" --host 127.0.0.1 --port "$port" --createTableMs 50 --deleteTableMs 50 --updateTableMs 50 >"$log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; rm -f "$log"' EXIT
for _ in $(seq 1 100); do
	if grep -q "listening" "$log" 2>/dev/null; then
		break
	fi
	if ! kill -0 $pid 2>/dev/null; then
		echo "with-dynalite: dynalite exited:" >&2
		cat "$log" >&2
		exit 1
	fi
	sleep 0.1
done
echo "with-dynalite: dynalite at http://127.0.0.1:$port" >&2
export AWS_ENDPOINT_URL_DYNAMODB="http://127.0.0.1:$port"
"$@"
