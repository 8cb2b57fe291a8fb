# The Python side of gopyro bench --case pyro: a Pyro4 daemon serving the
# same echo object as the gopyro daemon it is compared with.
import Pyro4

Pyro4.config.SERIALIZERS_ACCEPTED = {"serpent", "json", "marshal", "msgpack"}


@Pyro4.expose
class Bench(object):
    def echo(self, x):
        return x


with Pyro4.Daemon(host="127.0.0.1", port=0) as d:
    print("uri", d.register(Bench(), "bench"), flush=True)
    d.requestLoop()
