"""phasedyn.simulate: finite-d GD / online SGD / SpecGD runs in JAX."""
