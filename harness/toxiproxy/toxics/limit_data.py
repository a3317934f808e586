"""limit_data: closes the connection once `bytes` bytes have passed in this direction."""

from dataclasses import dataclass

from .base import Chunk, Stub, Toxic


@dataclass
class Transmitted:
    bytes: int = 0


class LimitDataToxic(Toxic):
    TYPE = "limit_data"
    ATTRIBUTES = {"bytes": 0}

    def new_state(self) -> Transmitted:
        return Transmitted()

    async def pipe(self, stub: Stub) -> None:
        state: Transmitted = stub.state
        while (chunk := await stub.recv()) is not None:
            remaining = max(self.bytes - state.bytes, 0)
            data = chunk.data[:remaining]
            if data:
                stub.send(Chunk(data, chunk.t))
                state.bytes += len(data)
            if state.bytes >= self.bytes:
                stub.close()
                return
