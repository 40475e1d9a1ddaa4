"""Reference RouteGuide server for RouteGuide's cross-language interop tests.

A small grpcio server with the reference behaviour of the RouteGuide wire
contract, holding two fixed people.  The Go client is run against it to check
that it speaks the same protocol as a Python peer.

Usage:
    python3 server.py --stubs DIR [--host 127.0.0.1] [--port 0]

DIR holds person_pb2, route_guide_pb2 and route_guide_pb2_grpc, generated
from protos/testdata/seed.  Once serving, it prints one line,
``listening on HOST:PORT``, with the port actually bound.  SIGTERM or SIGINT
stops it gracefully with exit status 0.
"""

import argparse
import importlib
import signal
import sys
import threading
from concurrent import futures

import grpc

# Seconds that in-flight calls get to finish before being cancelled on stop.
GRACE_SECONDS = 2.0


def load_stubs(stubs_dir):
    """Import the generated modules from stubs_dir."""
    sys.path.insert(0, stubs_dir)
    return (importlib.import_module("person_pb2"),
            importlib.import_module("route_guide_pb2_grpc"))


def make_people(person_pb2):
    """Return the reference people, keyed by name."""
    person = person_pb2.Person
    people = [
        person(name="Alice", age=30, gender=person.FEMALE,
               hobbies=["reading", "swimming"],
               address=person.Address(street="123 Main St",
                                      city="New York")),
        person(name="Bob", age=25, gender=person.MALE,
               hobbies=["gaming", "cycling"],
               address=person.Address(street="456 Elm St",
                                      city="Los Angeles")),
    ]
    return {p.name: p for p in people}


def make_servicer(person_pb2, grpc_module):
    """Build a RouteGuide servicer over the reference people."""
    people = make_people(person_pb2)

    class RouteGuide(grpc_module.RouteGuideServicer):
        def GetPerson(self, request, context):
            found = people.get(request.name)
            if found is None:
                return person_pb2.Person(name="Not Found")
            return found

        def GetPeople(self, request_iterator, context):
            # Answer each name as soon as it arrives; skip unknown names.
            for request in request_iterator:
                found = people.get(request.name)
                if found is not None:
                    yield found

    return RouteGuide()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stubs", required=True,
                        help="directory holding the generated Python stubs")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0,
                        help="port to listen on (0 picks a free one)")
    args = parser.parse_args()

    person_pb2, grpc_module = load_stubs(args.stubs)

    stop_requested = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop_requested.set())

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    grpc_module.add_RouteGuideServicer_to_server(
        make_servicer(person_pb2, grpc_module), server)

    host = f"[{args.host}]" if ":" in args.host else args.host
    port = server.add_insecure_port(f"{host}:{args.port}")
    server.start()
    print(f"listening on {host}:{port}", flush=True)

    stop_requested.wait()
    server.stop(GRACE_SECONDS).wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
