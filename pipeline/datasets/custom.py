"""Any other dataset in the ``<root>/<domain>/<class>/<file>`` layout: the domains are ``data.domains`` or, when
not listed, the folders under ``data.root`` (sorted); every domain needs a description in ``prompts.domains``."""
from . import DATASETS, Dataset


@DATASETS.register("custom")
class Custom(Dataset):
    domains = None
