# The client of gopyro bench --case pyro: calls echo(payload) on URI for
# SECONDS with SERIALIZER and prints the calls per second.
# Usage: pyro_client.py URI SERIALIZER SECONDS small|list
import sys
import time

import Pyro4

uri, ser, seconds, kind = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
Pyro4.config.SERIALIZER = ser
payload = "hello" if kind == "small" else list(range(1000))
with Pyro4.Proxy(uri) as p:
    if p.echo(payload) != payload:  # connects; checks the answer once
        sys.exit("wrong answer")
    n = 0
    start = time.perf_counter()
    end = start + seconds
    while True:
        p.echo(payload)
        n += 1
        if time.perf_counter() >= end:
            break
    print(n / (time.perf_counter() - start))
