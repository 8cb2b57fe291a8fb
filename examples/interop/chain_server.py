# The cookbook's chain server, in Python. In the mixed ring it is server 2,
# between gopyro's Go servers 1 and 3, all registered in gopyro's name
# server: python3 chain_server.py 2
import sys

import Pyro4


@Pyro4.expose
class Chain(object):
    def __init__(self, name, next):
        self.name = name
        self.nextName = next
        self.next = None

    def process(self, message):
        if self.next is None:
            self.next = Pyro4.core.Proxy("PYRONAME:example.chain." + self.nextName)
        if self.name in message:
            print("Back at %s; we completed the circle!" % self.name)
            return ["complete at " + self.name]
        else:
            print("I'm %s, passing to %s" % (self.name, self.nextName))
            message.append(self.name)
            result = self.next.process(message)
            result.insert(0, "passed on from " + self.name)
            return result


this = sys.argv[1] if len(sys.argv) > 1 else input("Which server is this? (1, 2, 3) ").strip()
next_server = {"1": "2", "2": "3", "3": "1"}[this]
Pyro4.Daemon.serveSimple({Chain(this, next_server): "example.chain." + this}, ns=True)
