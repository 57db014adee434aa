"""OfficeHome (Venkateswara et al., "Deep Hashing Network for Unsupervised Domain Adaptation", CVPR 2017):
15,588 images, 65 classes of office and home objects in four domains -- Art, Clipart, Product, Real World
(DomainBed's folder names and order). The paper defines the domains as artistic depictions (sketches,
paintings, ornaments), clipart, product images without background, and regular camera photos; the
descriptions say that. Folder names written as one word or with a typo get a prompt name."""
from . import DATASETS, Dataset


@DATASETS.register("office_home")
class OfficeHome(Dataset):
    domains = ["Art", "Clipart", "Product", "Real World"]
    descriptions = {"Art": "an artistic depiction", "Clipart": "a clipart image",
                    "Product": "a product photo on a white background", "Real World": "a photo"}
    class_names = {"Postit_Notes": "Post-it Notes", "ToothBrush": "Toothbrush", "Flipflops": "Flip-flops"}
    reference = "Venkateswara et al., CVPR 2017"
