"""timeout: lets no data through; closes the connection after timeout ms (0 = never, data dropped)."""

from .base import Stub, Toxic


class TimeoutToxic(Toxic):
    TYPE = "timeout"
    ATTRIBUTES = {"timeout": 0}

    async def pipe(self, stub: Stub) -> None:
        timer = stub.close_after(self.timeout / 1000.0) if self.timeout > 0 else None
        try:
            while (chunk := await stub.recv()) is not None:
                stub.drop(chunk)
        finally:
            if timer is not None:
                timer.cancel()
