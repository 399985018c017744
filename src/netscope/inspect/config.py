"""What `netscope inspect` computes: `InspectConfig`, one `--flag` per field."""

from __future__ import annotations

from dataclasses import dataclass

from netscope.errors import NetscopeError


@dataclass
class InspectConfig:
    """What `netscope inspect` computes; each field is a `--flag` of the same name."""

    images: int = 6  # test images (one per class in turn) for occlusion, saliency and IG
    top_k: int = 9  # patches per unit
    search_images: int = 10000  # test images searched for top patches (0 = all)
    layers: list[str] | None = None  # layers for top patches (default: every Conv2d)
    filters_layer: str | None = None  # default: the first Conv2d
    window: int = 7  # occluding square, pixels
    stride: int = 1  # occlusion positions every this many pixels
    occluder: float = 0.5  # grey value of the square
    ig_steps: int = 32
    class_steps: int = 200
    dream_layer: str | None = None  # default: the last Conv2d
    dream_photo: str = "camera"  # a photo from skimage.data
    dream_size: int = 112  # side of the dreamed image (conv layers take any size)
    octaves: int = 3
    dream_steps: int = 10
    morph: tuple[str, ...] = ("3:8", "chelsea:6")  # SOURCE:TARGET, SOURCE a class or photo
    morph_steps: int = 100
    projection: str = "deconvnet"  # how units are projected to pixels: deconvnet or guided
    units: int = 4  # units per layer followed through training and visualised by optimisation
    unit_images: int = 1000  # test images searched for the units of growth and units stages
    unit_steps: int = 256  # ascent steps per unit visualisation
    unit_copies: int = 3  # different optima per unit (a diversity term keeps them apart)
    fourier: bool = False  # optimise unit images as a 1/f-scaled spectrum (Olah et al. 2017)
    stages: list[str] | None = None  # which stages to run (default: all, in order)
    seed: int = 0
    device: str = "auto"
    progress: bool = True

    def __post_init__(self) -> None:
        checks = [
            ("images", self.images >= 1),
            ("top-k", self.top_k >= 1),
            ("search-images", self.search_images >= 0),
            ("window", self.window >= 1),
            ("stride", self.stride >= 1),
            ("ig-steps", self.ig_steps >= 1),
            ("class-steps", self.class_steps >= 1),
            ("octaves", self.octaves >= 1),
            ("dream-steps", self.dream_steps >= 1),
            ("morph-steps", self.morph_steps >= 1),
            ("units", self.units >= 1),
            ("unit-images", self.unit_images >= 1),
            ("unit-steps", self.unit_steps >= 1),
            ("unit-copies", self.unit_copies >= 1),
        ]
        for flag, ok in checks:
            if not ok:
                value = getattr(self, flag.replace("-", "_"))
                raise NetscopeError(f"--{flag} {value}: expected a positive integer")
