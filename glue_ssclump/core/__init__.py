"""The science layer: cube I/O, detectors, catalogue, samples, SS-3D-Clump.

Only numpy / scipy / astropy / spectral-cube / astrodendro / torch / scikit-learn are
imported here: never glue, never Qt.
"""
