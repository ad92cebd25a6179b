"""Training: datasets that simulate propagation, augmentation, losses, and the training loop.

Importing this package loads nothing heavy; import the submodules you need
(``manet.train.data``, ``manet.train.augment``, ``manet.train.losses``).
"""
