"""Every attack netscope runs by name: `netscope attack --method NAME`, the demo, the report and
the web page's adversarial twin all read this table. Adding an attack: write its file (the
attack, an adapter from an AttackJob, its options dataclass and its `SPEC`), then add one line
here."""

from netscope.attack.deepfool import SPEC as DEEPFOOL
from netscope.attack.gradient import FGSM_SPEC, PGD_SPEC
from netscope.attack.lbfgs import SPEC as LBFGS
from netscope.attack.spec import AttackSpec
from netscope.attack.universal import SPEC as UNIVERSAL

ATTACKS: dict[str, AttackSpec] = {
    spec.name: spec for spec in (FGSM_SPEC, PGD_SPEC, LBFGS, DEEPFOOL, UNIVERSAL)
}
