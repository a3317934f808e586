"""slow_close: delays the close of the connection by delay milliseconds; data is unaffected."""

from .base import Stub, Toxic


class SlowCloseToxic(Toxic):
    TYPE = "slow_close"
    ATTRIBUTES = {"delay": 0}

    async def pipe(self, stub: Stub) -> None:
        while (chunk := await stub.recv()) is not None:
            stub.send(chunk)
        if stub.end is not None:
            await stub.sleep(self.delay / 1000.0)
