"""The model registry: one :class:`ModelSpec` per named model, holding every fact about it.

The CLI's help, the widget's model list and tooltips, the quality guard's rules,
``napari-dncnn models`` and the models table of the docs are all made from
:data:`MODELS`.  Adding a model is one entry here (and, for a new architecture, one
module under :mod:`napari_dncnn.networks`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "ModelFile",
    "ModelSpec",
    "MODELS",
    "spec_for",
    "BUNDLED",
    "DOWNLOADED",
    "TASKS",
    "model_help",
    "model_tooltip",
]

TASKS = {
    "jpeg": "JPEG artifacts",
    "jpeg+noise": "JPEG artifacts, Gaussian noise, x2-x4 upscaling blur",
    "gaussian": "Gaussian noise",
    "real-noise": "real camera noise",
}


@dataclass(frozen=True)
class ModelFile:
    """A downloadable weights file: its public URL, sha256 and size in bytes (None: unknown).

    ``approx_size``, where the size is unknown: the bytes of its tensors, from the key list of
    the released file (``tests/data/upstream/*_keys.json``; a file is some 0.1-0.3% more).
    """

    url: str
    sha256: str
    size: int | None = None
    approx_size: int | None = None

    @property
    def filename(self) -> str:
        return self.url.rsplit("/", 1)[-1]


@dataclass(frozen=True, eq=False)
class ModelSpec:
    """Everything about one named model.

    ``file`` is None for the bundled models (shipped in ``weights/bundled/``).  ``control`` is
    None, ``"quality"`` (FBCNN: the JPEG quality to assume) or ``"sigma"`` (DRUNet: the noise
    level, 0-255 units).  ``guard_max_quality``: the highest JPEG quality at which the model was
    measured to make no image worse (``benchmarks/bench_no_harm.py``); 0 where it makes some image
    worse at every quality (the guard then runs it only when forced); None where unmeasured
    (the guard then uses 90 for gray and 80 for colour).  ``guard_max_quality_color``: the same
    for colour images where it differs (a gray model run per channel).  ``published``: numbers from the
    model's paper, as ``{table: "value / value / ..."}``.
    """

    name: str
    task: str
    channels: int
    architecture: str
    summary: str
    licence: str
    source: str
    citation: str
    file: ModelFile | None = None
    control: str | None = None
    guard_max_quality: int | None = None
    guard_max_quality_color: int | None = None
    colour_only: bool = False
    published: dict = field(default_factory=dict)
    notice: str = ""

    @property
    def bundled(self) -> bool:
        return self.file is None

    @property
    def guarded(self) -> bool:
        """Whether the JPEG quality guard applies (it does to every JPEG model)."""
        return self.task in ("jpeg", "jpeg+noise")


_OURS = {
    "licence": "BSD-3-Clause (napari-dncnn)",
    "source": "napari-dncnn, trained on Train400 / CBSD432 (docs/training.md)",
    "citation": "Zhang et al., Beyond a Gaussian Denoiser, IEEE TIP 2017 (the architecture)",
}
_DNCNN = {
    "architecture": "dncnn",
    "licence": "none published: downloaded from the source for you, never redistributed",
    "source": "https://github.com/cszn/DnCNN (commit e93b278, folder model/)",
    "citation": (
        "Zhang et al., Beyond a Gaussian Denoiser: Residual Learning of Deep CNN for Image Denoising, "
        "IEEE TIP 2017"
    ),
}
_FBCNN = {
    "task": "jpeg",
    "architecture": "fbcnn",
    "control": "quality",
    "licence": "Apache-2.0",
    "source": "https://github.com/jiaxi-jiang/FBCNN (release v1.0)",
    "citation": "Jiang et al., Towards Flexible Blind JPEG Artifacts Removal, ICCV 2021",
    "notice": "FBCNN weights (c) Jiaxi Jiang et al., Apache License 2.0; downloaded unchanged from the release",
}
_KAIR = "https://github.com/cszn/KAIR/releases/download/v1.0/"

MODELS: dict[str, ModelSpec] = {
    s.name: s
    for s in (
        ModelSpec(
            "jpeg-gray",
            "jpeg",
            1,
            "dncnn",
            "ours, bundled: gray JPEG artifacts (DnCNN-17/64)",
            guard_max_quality=60,
            **_OURS,
        ),
        ModelSpec(
            "jpeg-color",
            "jpeg",
            3,
            "dncnn",
            "ours, bundled: colour JPEG artifacts (DnCNN-17/64)",
            guard_max_quality=45,
            **_OURS,
        ),
        ModelSpec(
            "dncnn3",
            "jpeg+noise",
            1,
            summary="DnCNN-3, gray: JPEG q5-99, Gaussian noise, x2-x4 blur",
            file=ModelFile(
                "https://github.com/cszn/DnCNN/raw/master/model/DnCNN3.mat",
                "3962377d522b6728417e364bf7a589cf34ddfb592af0bd9769e53f8123d17677",
                2771543,
            ),
            published={
                "Classic5 gray, q10/20/30/40": "29.40 / 31.63 / 32.91 / 33.77",
                "LIVE1 gray, q10/20/30/40": "29.19 / 31.59 / 32.98 / 33.96",
            },
            # benchmarks/bench_no_harm.py skimage --model dncnn3: phantom loses 0.48 dB at q10 and
            # more above, so no quality is safe; the guard runs it only when forced.  Per channel
            # on colour (--color): astronaut +0.02 dB at q60, -0.09 at q65.
            guard_max_quality=0,
            guard_max_quality_color=60,
            **_DNCNN,
        ),
        ModelSpec(
            "dncnn-b",
            "gaussian",
            1,
            summary="DnCNN-B, gray: blind Gaussian noise (sigma 0-55)",
            file=ModelFile(
                "https://github.com/cszn/DnCNN/raw/master/model/GD_Gray_Blind.mat",
                "37f76da0b71dd2b2789ce91848fe2f184ab486203c9af9ac1b98199b60ea02b0",
                2766582,
            ),
            published={"BSD68 gray, sigma 15/25/50": "31.61 / 29.16 / 26.23"},
            **_DNCNN,
        ),
        ModelSpec(
            "cdncnn-b",
            "gaussian",
            3,
            summary="CDnCNN-B, colour: blind Gaussian noise (sigma 0-55)",
            file=ModelFile(
                "https://github.com/cszn/DnCNN/raw/master/model/GD_Color_Blind.mat",
                "57db5437a44037e7675a99042fe7b14d3dcdf1c333d3ec665855566e8a59795c",
                2763713,
            ),
            published={"CBSD68 colour, sigma 15/25/50": "33.89 / 31.23 / 27.92"},  # Table III
            **_DNCNN,
        ),
        ModelSpec(
            "fbcnn-color",
            channels=3,
            summary="FBCNN, colour: blind JPEG artifacts, quality settable",
            file=ModelFile(
                "https://github.com/jiaxi-jiang/FBCNN/releases/download/v1.0/fbcnn_color.pth",
                "8b0e4ef23d59cf7ac934a342cb31a17619e4fa4a0b3374a9d78c5174312387e8",
                287755111,
            ),
            published={"LIVE1 colour (RGB, 4:2:0), q10/20/30/40": "27.77 / 30.11 / 31.43 / 32.34"},
            **_FBCNN,
        ),
        ModelSpec(
            "fbcnn-gray",
            channels=1,
            summary="FBCNN, gray: blind JPEG artifacts, quality settable",
            file=ModelFile(
                "https://github.com/jiaxi-jiang/FBCNN/releases/download/v1.0/fbcnn_gray.pth",
                "7beec25b883a6c3bd7d103429b78a2371f7e85c1f5261a6e2e5d0702d9e9f977",
                approx_size=287677960,
            ),
            published={
                "Classic5 gray, q10/20/30/40": "30.12 / 32.31 / 33.54 / 34.35",
                "LIVE1 gray, q10/20/30/40": "29.75 / 32.13 / 33.54 / 34.53",
            },
            **_FBCNN,
        ),
        ModelSpec(
            "fbcnn-gray-double",
            channels=1,
            summary="FBCNN, gray: JPEG compressed twice (non-aligned grids), quality settable",
            file=ModelFile(
                "https://github.com/jiaxi-jiang/FBCNN/releases/download/v1.0/fbcnn_gray_double.pth",
                "4444b8b2393649a4acd5d8730410ec3106d15b6e262a49081e4e87b44cfa5cea",
                287745895,
            ),
            **_FBCNN,
        ),
        ModelSpec(
            "drunet-color",
            "gaussian",
            3,
            "drunet",
            "DRUNet, colour: Gaussian noise of a given sigma (default 15)",
            licence="MIT",
            source="https://github.com/cszn/KAIR (release v1.0)",
            citation="Zhang et al., Plug-and-Play Image Restoration with Deep Denoiser Prior, TPAMI 2021",
            file=ModelFile(
                _KAIR + "drunet_color.pth",
                "479abe3c5327dfd10ff54a80ec7d4098ca80752a5c9492cdff31cee430bec4b4",
                approx_size=130563840,
            ),
            control="sigma",
            colour_only=True,
            published={"CBSD68 colour, sigma 15/25/50": "34.30 / 31.69 / 28.51"},
            notice="DRUNet weights (c) Kai Zhang (KAIR), MIT License; downloaded unchanged from the release",
        ),
        ModelSpec(
            "scunet-real",
            "real-noise",
            3,
            "scunet",
            "SCUNet, colour: real camera noise (blind), PSNR-trained",
            licence="Apache-2.0",
            source="https://github.com/cszn/KAIR (release v1.0)",
            citation="Zhang et al., Practical Blind Image Denoising via Swin-Conv-UNet and Data Synthesis, MIR 2023",
            file=ModelFile(
                _KAIR + "scunet_color_real_psnr.pth",
                "fa78899ba2caec9d235a900e91d96c689da71c42029230c2028b00f09f809c2e",
                71982841,
            ),
            colour_only=True,
            notice="SCUNet weights (c) Kai Zhang et al., Apache License 2.0; downloaded unchanged from the release",
        ),
    )
}
"""Every named model: the bundled ones first, then those downloaded on first use."""

BUNDLED = [n for n, s in MODELS.items() if s.bundled]
DOWNLOADED = [n for n, s in MODELS.items() if not s.bundled]


def spec_for(name: str) -> ModelSpec | None:
    """The spec of a named model, or None for a path or 'auto'."""
    return MODELS.get(str(name))


def colour_only(name: str) -> bool:
    """A named colour DnCNN, which refuses gray data (as the engine does: other colour networks
    take gray as three equal channels); False for 'auto' and paths (known once they load)."""
    spec = spec_for(name)
    return spec is not None and spec.channels == 3 and spec.architecture == "dncnn"


def model_help() -> str:
    """The ``--model`` help of every command, made from the registry."""
    bundled = ", ".join(BUNDLED)
    named = ", ".join(DOWNLOADED)
    return (
        f"auto (default: jpeg-gray or jpeg-color by the image), {bundled} (bundled), {named} "
        "(downloaded on first use; napari-dncnn models lists them), or the path of a .safetensors, "
        ".mat (MatConvNet) or .pth (state dict) file; downloads go to $NAPARI_DNCNN_CACHE or the "
        "user cache"
    )


def model_tooltip() -> str:
    """The widget's model tooltip: one line per named model."""
    lines = ["auto: jpeg-gray for gray images, jpeg-color for RGB (bundled, offline)."]
    for s in MODELS.values():
        where = "" if s.bundled else "downloaded once; "  # a bundled one's summary says so
        licence = s.licence.split(":")[0].split(" (")[0].replace("none published", "no licence")
        lines.append(f"{s.name}: {s.summary} ({where}{licence}).")
    lines.append("'weights file': your own .safetensors/.mat/.pth.")
    return "\n".join(lines)
