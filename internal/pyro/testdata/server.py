# A Python Pyro server, as a Pyro user writes it, for gopyro's Go proxies
# to call. Usage: server.py PROTOCOL(4|5) [TOKEN]
# It prints "uri PYRO:thing@host:port" once it serves, then runs until
# killed.
import sys
import threading
import time

proto = sys.argv[1]
token = sys.argv[2] if len(sys.argv) > 2 else ""
if proto == "4":
    import Pyro4 as P
    P.config.SERIALIZERS_ACCEPTED = {"serpent", "json", "marshal", "msgpack"}
    Daemon = P.Daemon
else:
    import Pyro5.api as P
    import Pyro5.server
    Daemon = P.Daemon
    if token:
        class Daemon(P.Daemon):
            def validateHandshake(self, conn, data):
                if data != token:
                    raise ValueError("handshake failed: wrong token")
                return "hello"


@P.expose
class Child(object):
    def name(self):
        return "child"


@P.expose
class Thing(object):
    def __init__(self):
        self.recorded = []
        self.cond = threading.Condition()

    def echo(self, x):
        return x

    def describe(self, x):
        if isinstance(x, dict):
            return "dict:" + repr(sorted(x.items()))
        return type(x).__name__ + ":" + repr(x)

    def add(self, a, b):
        return a + b

    def pair(self):
        return ("a", 2)

    def person(self):
        return {"name": "Ada", "age": 36, "tags": ["x", "y"]}

    def fail(self, msg):
        raise ValueError(msg)

    def count(self, n):
        for i in range(n):
            yield i

    def open_streams(self):
        return len(self._pyroDaemon.streaming_responses)

    @P.oneway
    def record(self, s):
        with self.cond:
            self.recorded.append(s)
            self.cond.notify_all()

    def recorded_items(self, n):
        with self.cond:
            self.cond.wait_for(lambda: len(self.recorded) >= n, 30)
            return list(self.recorded)

    def slow(self, seconds):
        time.sleep(seconds)
        return "slept"

    def child(self):
        c = Child()
        self._pyroDaemon.register(c)
        return c

    def call_back(self, callback, x):
        return callback.Double(x)


with Daemon(host="127.0.0.1", port=0) as d:
    if token and proto == "4":
        d._pyroHmacKey = token.encode()
    uri = d.register(Thing(), "thing")
    print("uri", uri, flush=True)
    d.requestLoop()
