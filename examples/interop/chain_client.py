# The cookbook's chain client: sends a message round the ring.
import Pyro4

obj = Pyro4.core.Proxy("PYRONAME:example.chain.1")
print("Result=%s" % obj.process(["hello"]))
