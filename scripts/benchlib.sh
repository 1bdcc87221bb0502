# Helpers the gRPC benchmark scripts source: wait for a server, read its CPU
# time from /proc, turn CPU ticks into time per request.

# wait_serving ADDR: poll grpc.health.v1 until the server says SERVING (a
# server that is still loading answers NOT_SERVING, which ghz counts as OK).
wait_serving() {
  for _ in $(seq 1 600); do
    .tools/grpcurl -plaintext -max-time 1 "$1" grpc.health.v1.Health/Check 2>/dev/null | grep -q '"SERVING"' && return 0
    sleep 0.1
  done
  echo "server at $1 never became SERVING" >&2
  return 1
}

# proc_cpu PID: the process's user + system CPU time, in clock ticks.
proc_cpu() { awk '{print $14+$15}' "/proc/$1/stat"; }

# per_request C0 C1 N: microseconds of CPU per request between two proc_cpu
# readings over N requests.
per_request() { python3 -c "print(round(($2-$1)/$(getconf CLK_TCK)/$3*1e6))"; }

# ghz_count FILE: the request count of a ghz JSON report.
ghz_count() { python3 -c "import json;print(json.load(open('$1'))['count'])"; }
