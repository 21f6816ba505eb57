"""Plain NumPy kernels: the forward and backward maths of every operator, side by side.

Conventions: channels-last arrays (N, *spatial, C); a ``*_forward`` function returns its output
(and, where the backward needs more than the inputs, a cache); the ``*_backward`` function next
to it maps the output gradient to input gradients. No classes with state, no autograd.
"""
