"""Reference RouteGuide client for RouteGuide's cross-language interop tests.

Runs a fixed sequence of calls against a RouteGuide server (typically the Go
one) and prints each answer, so the output can be diffed against
testdata/python_client.golden.  It also checks that GetPeople answers each
name as it arrives, without waiting for the client to half-close.

Usage:
    python3 client.py --stubs DIR --target HOST:PORT

DIR holds person_pb2, route_guide_pb2 and route_guide_pb2_grpc, generated
from protos/testdata/seed.  Exits 1 on any RPC error or failed check.
"""

import argparse
import importlib
import queue
import sys
import threading

import grpc

# Seconds allowed for every call, and for each interleaved answer.
TIMEOUT_SECONDS = 10


class CheckFailed(Exception):
    """A server behaved differently from the reference."""


def load_stubs(stubs_dir):
    """Import the generated modules from stubs_dir."""
    sys.path.insert(0, stubs_dir)
    return (importlib.import_module("route_guide_pb2"),
            importlib.import_module("route_guide_pb2_grpc"))


def show(prefix, p):
    """Print one person in the format the golden file expects."""
    print(f"{prefix}: {p.name}, Age: {p.age}, Gender: {p.gender}, "
          f"Hobbies: {p.hobbies}, Address: {p.address.street}, "
          f"{p.address.city}")


class Interleaved:
    """A GetPeople call whose requests are sent one at a time on demand."""

    _END = object()

    def __init__(self, stub, name_type):
        self._name_type = name_type
        self._requests = queue.Queue()
        self._answers = queue.Queue()
        self._call = stub.GetPeople(self._send_queued(),
                                    timeout=TIMEOUT_SECONDS)
        threading.Thread(target=self._read, daemon=True).start()

    def _send_queued(self):
        while True:
            request = self._requests.get()
            if request is self._END:
                return
            yield request

    def _read(self):
        try:
            for person in self._call:
                self._answers.put(person)
            self._answers.put(self._END)
        except grpc.RpcError as err:
            self._answers.put(err)

    def send(self, name):
        self._requests.put(self._name_type(name=name))

    def close(self):
        self._requests.put(self._END)

    def cancel(self):
        self._call.cancel()
        self.close()

    def next_answer(self, waiting_for):
        """Return the next answer, or _END once the stream has ended."""
        late = CheckFailed(f"no answer within {TIMEOUT_SECONDS}s "
                           f"while waiting for {waiting_for}")
        try:
            answer = self._answers.get(timeout=TIMEOUT_SECONDS)
        except queue.Empty:
            raise late from None
        if isinstance(answer, grpc.RpcError):
            # The call's deadline and our wait are the same length, so a
            # missing answer usually shows up as an expired deadline.
            if answer.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
                raise late from answer
            raise answer
        return answer

    def expect(self, name):
        person = self.next_answer(name)
        if person is self._END:
            raise CheckFailed(f"stream ended while waiting for {name}")
        if person.name != name:
            raise CheckFailed(f"got {person.name!r}, want {name!r}")
        return person

    def expect_end(self):
        answer = self.next_answer("the end of the stream")
        if answer is not self._END:
            raise CheckFailed(
                f"unexpected answer after close: {answer.name!r}")


def check_interleaving(stub, name_type):
    """Check that each name is answered before the next one is sent."""
    call = Interleaved(stub, name_type)
    try:
        for name in ("Bob", "Alice"):
            call.send(name)
            show("Interleaved", call.expect(name))
        call.close()
        call.expect_end()
    except CheckFailed:
        call.cancel()
        raise


def run(stub, name_type):
    """Make the reference sequence of calls, printing every answer."""
    show("GetPerson", stub.GetPerson(name_type(name="Alice"),
                                     timeout=TIMEOUT_SECONDS))

    names = (name_type(name=n) for n in ("Alice", "Bob", "Charlie"))
    for person in stub.GetPeople(names, timeout=TIMEOUT_SECONDS):
        show("GetPeople", person)

    show("GetPerson", stub.GetPerson(name_type(name="Charlie"),
                                     timeout=TIMEOUT_SECONDS))

    check_interleaving(stub, name_type)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stubs", required=True,
                        help="directory holding the generated Python stubs")
    parser.add_argument("--target", required=True,
                        help="server address as HOST:PORT")
    args = parser.parse_args()

    route_guide_pb2, grpc_module = load_stubs(args.stubs)

    with grpc.insecure_channel(args.target) as channel:
        try:
            run(grpc_module.RouteGuideStub(channel), route_guide_pb2.Name)
        except grpc.RpcError as err:
            print(f"interop client: {err.code().name} {err.details()}",
                  file=sys.stderr)
            return 1
        except CheckFailed as err:
            print(f"interop client: {err}", file=sys.stderr)
            return 1

    print("interop client: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
