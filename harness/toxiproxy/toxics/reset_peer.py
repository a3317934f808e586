"""reset_peer: on the first data, waits timeout ms then resets the connection (TCP RST both ways)."""

from .base import End, Stub, Toxic


class ResetPeerToxic(Toxic):
    TYPE = "reset_peer"
    ATTRIBUTES = {"timeout": 0}

    async def pipe(self, stub: Stub) -> None:
        chunk = await stub.recv()
        if chunk is None:
            return
        stub.drop(chunk)  # like Toxiproxy: data in flight is discarded by the reset
        if await stub.sleep(self.timeout / 1000.0):
            stub.close(End.RESET)
            return
        while (chunk := await stub.recv()) is not None:  # removed before firing
            stub.send(chunk)
