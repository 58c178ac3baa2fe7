"""The built-in dataset components (entry point ``datasets``), reading the original published formats.

* ``fashion_mnist``, ``mnist``: IDX files (:mod:`.idx`), plain or gzip-compressed;
* ``cifar10``, ``cifar100``: the binary versions (never the pickled python versions);
* ``stl10``: the binary version, including the unlabelled split;
* ``image_folder``: ImageNet-style ``root/<split>/<class>/<image>`` folders.

:func:`.label_fraction.balanced_subset` picks class-balanced label fractions for semi-supervised
evaluation.
"""
