# A Python Pyro client, as a Pyro user writes it, calling gopyro's Go
# objects. Usage: client.py PROTOCOL(4|5) SERIALIZER CALC_URI NS_HOST NS_PORT
# It prints one line per check; the Go test compares every line.
import sys

proto, ser, calc_uri, ns_host, ns_port = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
if proto == "4":
    import Pyro4 as P
    from Pyro4 import errors
    P.config.SERIALIZER = ser
    P.config.SERIALIZERS_ACCEPTED.add(ser)
    Proxy, locate = P.Proxy, P.locateNS
else:
    import Pyro5.api as P
    from Pyro5 import errors
    P.config.SERIALIZER = ser
    Proxy, locate = P.Proxy, P.locate_ns


def show(label, f):
    try:
        print(label, repr(f()))
    except Exception as e:
        print(label, "raised", type(e).__name__, str(e).split("\n")[0], getattr(e, "gopyro_code", None))


with Proxy(calc_uri) as c:
    show("add", lambda: c.add(2, 3))
    show("add-overflow", lambda: c.add(2**31, 1))
    show("add-type", lambda: c.add("2", 3))
    show("add-count", lambda: c.add(1))
    show("div", lambda: c.div(1, 4))
    show("div-zero", lambda: c.div(1, 0))
    show("greet", lambda: c.greet("Ada"))
    show("greet-kw", lambda: c.greet("Ada", greeting="Hello", times=2))
    show("greet-pos", lambda: c.greet("Ada", "Hey"))
    show("greet-badkw", lambda: c.greet("Ada", colour="red"))
    show("add-kw", lambda: c.add(1, b=2))
    show("person", lambda: sorted(c.older({"Name": "Ada", "age": 36, "Tags": ["x"]}).items()))
    show("person-badfield", lambda: c.older({"Name": "Ada", "height": 1}))
    show("missing", lambda: c.missing("k"))
    show("refuse", lambda: c.refuse())
    show("big", lambda: c.big(2**70))
    show("big-overflow", lambda: c.add(2**70, 1))
    show("floats", lambda: c.floats([1, 2.5, float("inf")]))
    show("nosuch", lambda: c.nosuch())
    if ser != "json":
        show("bytes", lambda: c.reverse(b"\x00\x01\xff"))
    else:
        show("bytes", lambda: c.reverse(b"\x00\x01\xff"))
    show("snake", lambda: c.get_id())
    show("map", lambda: sorted(c.count_words(["a", "b", "a"]).items()))
    c.record("oneway!")
    show("recorded", lambda: c.wait_recorded())
    child = c.child()
    show("autoproxy", lambda: child.name())
    show("stream", lambda: list(c.numbers()))
    it = c.numbers()
    show("stream-close", lambda: next(it))
    it.close()
    if ser == "marshal":
        print("batch skipped")  # Pyro's marshal serializer cannot send batch calls (kwargs None)
    elif proto == "4":
        batch = P.batch(c)
    else:
        batch = P.BatchProxy(c)
    if ser != "marshal":
        batch.add(1, 1)
        batch.div(1, 0)
        batch.add(2, 2)
        results = batch()
        out = []
        try:
            for r in results:
                out.append(r)
        except Exception as e:
            out.append(type(e).__name__)
        print("batch", out)

ns = locate(ns_host, ns_port)
ns.ping()
ns.register("py.calc", calc_uri, metadata={"calc", "go"})
show("ns-lookup", lambda: str(ns.lookup("py.calc")))
show("ns-lookup-meta", lambda: (str(ns.lookup("py.calc", return_metadata=True)[0]), sorted(ns.lookup("py.calc", return_metadata=True)[1])))
show("ns-list", lambda: sorted(ns.list(prefix="py.").items()))
if proto == "4":
    show("ns-list-meta", lambda: sorted(ns.list(metadata_all=["calc"]).keys()))
else:
    show("ns-list-meta", lambda: sorted(ns.yplookup(meta_all=["calc"], return_metadata=False).keys()))
show("ns-list-regex", lambda: sorted(ns.list(regex="py").keys()))
show("ns-count", lambda: ns.count())
show("ns-safe", lambda: ns.register("py.calc", calc_uri, safe=True))
show("ns-unknown", lambda: ns.lookup("no.such"))
ns.set_metadata("py.calc", ["other"])
show("ns-setmeta", lambda: sorted(ns.lookup("py.calc", return_metadata=True)[1]))
with Proxy("PYRONAME:py.calc@%s:%d" % (ns_host, ns_port)) as c:
    show("pyroname", lambda: c.add(40, 2))
show("ns-remove", lambda: ns.remove("py.calc"))
show("ns-remove-self", lambda: ns.remove("Pyro.NameServer"))
print("done")
