"""Reference PDE cases of the papers: Darcy flow and viscous Burgers, as xarray Datasets.

:mod:`~climlatent.reference.darcy` gives the KLE Darcy-flow datasets of Jacobsen &
Duraisamy (2022), :mod:`~climlatent.reference.burgers` the viscous Burgers trajectories
of the VAE-DLM experiment. Numpy, scipy and xarray only: the studies
(:mod:`climlatent.studies`) train on them, and the generation benchmarks
(``climlatent bench darcy_generation``, ``climlatent bench burgers_generation``) time
them.
"""
