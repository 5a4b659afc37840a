"""Lava processes that stream data through numpy memmaps instead of Lava Vars.

Reading a Lava Var back goes element by element (slow for whole layers); these processes write every time
step straight into a file-backed ``numpy.memmap`` shared with the parent process, so read-back
is free. File layouts (all C-order, row ``i`` = run step ``i`` = Lava ``time_step - 1``):
- ``MemmapSource``: reads ``[steps, N]`` (``uint8`` spikes or ``int32`` graded values) and sends
  row ``time_step - 1`` on ``s_out``;
- ``MemmapSink``: writes what arrives on ``a_in`` (spikes) to ``uint8 [steps, N]``;
- ``MemmapProbe``: after each step reads the referenced Var (e.g. a LIF's ``u`` or ``v``) through
  a RefPort and writes it to ``int32 [steps, N]``.
"""

from __future__ import annotations

import numpy as np

from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.model import PyLoihiProcessModel
from lava.magma.core.model.py.ports import PyInPort, PyOutPort, PyRefPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.process.ports.ports import InPort, OutPort, RefPort
from lava.magma.core.process.process import AbstractProcess
from lava.magma.core.process.variable import Var
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol


class MemmapSource(AbstractProcess):
    """Sends row ``time_step - 1`` of the ``[steps, size]`` memmap at ``path`` (``dtype`` ``"uint8"``
    or ``"int32"``) each step."""

    def __init__(self, *, path: str, size: int, steps: int, dtype: str = "uint8") -> None:
        super().__init__(path=path, size=size, steps=steps, dtype=dtype)
        self.s_out = OutPort(shape=(size,))


class MemmapSink(AbstractProcess):
    """Writes the spikes arriving on ``a_in`` to row ``time_step - 1`` of a ``uint8 [steps, size]`` memmap."""

    def __init__(self, *, path: str, size: int, steps: int) -> None:
        super().__init__(path=path, size=size, steps=steps)
        self.a_in = InPort(shape=(size,))


class MemmapProbe(AbstractProcess):
    """Records a Var after every step into row ``time_step - 1`` of an ``int32 [steps, size]`` memmap."""

    def __init__(self, *, var: Var, path: str, steps: int) -> None:
        size = int(np.prod(var.shape))
        super().__init__(path=path, size=size, steps=steps)
        self.state = RefPort(var.shape)
        self.state.connect_var(var)
        # a dummy Var keeps the process non-empty for the compiler
        self.counter = Var(shape=(1,), init=0)


def _open(params: dict, dtype: type, mode: str) -> np.memmap:
    return np.memmap(params["path"], dtype=dtype, mode=mode, shape=(params["steps"], params["size"]))


@implements(proc=MemmapSource, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyMemmapSourceModel(PyLoihiProcessModel):
    """Fixed-point model of ``MemmapSource``."""

    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32)

    def __init__(self, proc_params: dict) -> None:
        super().__init__(proc_params)
        self._mm: np.memmap | None = None

    def run_spk(self) -> None:
        if self._mm is None:
            self._mm = _open(self.proc_params, np.dtype(self.proc_params["dtype"]), "r")
        step = self.time_step - 1
        if step < self._mm.shape[0]:
            self.s_out.send(self._mm[step].astype(np.int32))
        else:
            self.s_out.send(np.zeros(self._mm.shape[1], np.int32))


@implements(proc=MemmapSink, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyMemmapSinkModel(PyLoihiProcessModel):
    """Fixed-point model of ``MemmapSink``."""

    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32)

    def __init__(self, proc_params: dict) -> None:
        super().__init__(proc_params)
        self._mm: np.memmap | None = None

    def run_spk(self) -> None:
        data = self.a_in.recv()
        if self._mm is None:
            self._mm = _open(self.proc_params, np.uint8, "r+")
        step = self.time_step - 1
        if step < self._mm.shape[0]:
            self._mm[step] = data != 0


@implements(proc=MemmapProbe, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyMemmapProbeModel(PyLoihiProcessModel):
    """Fixed-point model of ``MemmapProbe`` (reads the Var in the post-management phase)."""

    state: PyRefPort = LavaPyType(PyRefPort.VEC_DENSE, np.int32)
    counter: np.ndarray = LavaPyType(np.ndarray, np.int32)

    def __init__(self, proc_params: dict) -> None:
        super().__init__(proc_params)
        self._mm: np.memmap | None = None

    def post_guard(self) -> bool:
        return True

    def run_post_mgmt(self) -> None:
        data = self.state.read()
        if self._mm is None:
            self._mm = _open(self.proc_params, np.int32, "r+")
        step = self.time_step - 1
        if step < self._mm.shape[0]:
            self._mm[step] = np.asarray(data).reshape(-1)
