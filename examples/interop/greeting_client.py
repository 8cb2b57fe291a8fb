# The cookbook's greeting client.
import sys

import Pyro4

name = sys.argv[1] if len(sys.argv) > 1 else input("What is your name? ").strip()
greeting_maker = Pyro4.Proxy("PYRONAME:example.greeting")
print(greeting_maker.welcomeMessage(name))
