"""Training on more than one process or machine: synchronous data parallelism over MPI.

Launch with ``mpirun -n 4 python my_script.py`` (or ``mpirun -n 4 cnnkit train ...``, or
``cnnkit train --processes 2``). In a script:

* Keras style: ``model.fit(x, y, batch_size=128, distributed=True)``; ``batch_size`` is the
  global batch, split across the ranks; rank 0 runs the callbacks.
* PyTorch style: ``opt = DistributedOptimizer(optim.Adam(model.parameters()))``,
  ``broadcast_parameters(model)``, a ``DataLoader(ds, batch_size=b, sampler=
  DistributedSampler(ds))`` per rank, then the usual loop; ``step()`` averages the gradients.

Needs ``pip install 'cnnkit[distributed]'`` (mpi4py and an MPI library)."""

from .comm import MPIGroup, init, is_main_process, launched_under_mpi, require_mpi, world
from .optimizer import DistributedOptimizer, broadcast_optimizer_state, broadcast_parameters
from .sampler import DistributedSampler, split_batch

__all__ = ["MPIGroup", "init", "world", "is_main_process", "launched_under_mpi", "require_mpi",
           "DistributedOptimizer", "broadcast_parameters", "broadcast_optimizer_state",
           "DistributedSampler", "split_batch"]
