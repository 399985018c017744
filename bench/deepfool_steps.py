"""The DeepFool steps that a universal perturbation adds up, netscope's vs ART's, on the
ResNet row's images (bench/RESULTS.md §14): the L2 size of each image's perturbation and
whether it fools.

    PYTHONPATH=src python bench/deepfool_steps.py   # from the repository root
"""

from __future__ import annotations

import torch
from peers import art_classifier
from setups import resnet_setup

from netscope.attack import deepfool


def main() -> None:
    setup = resnet_setup(8, 0, 224, 1000, torch.device("cpu"))
    ours = deepfool(setup.model, setup.images, setup.labels, max_iter=10, overshoot=0.02)
    print("netscope: fools", ours.success.tolist())
    print("  L2", [round(v, 2) for v in ours.perturbation.flatten(1).norm(dim=1).tolist()])

    from art.attacks.evasion import DeepFool

    classifier = art_classifier(setup.model, setup.shape, setup.num_classes, setup.device)
    attack = DeepFool(classifier, max_iter=10, epsilon=0.02, nb_grads=10, verbose=False)
    adversarial = torch.from_numpy(attack.generate(setup.images.numpy()))
    with torch.no_grad():
        fooled = setup.model(adversarial).argmax(1) != setup.labels
    print("ART: fools", fooled.tolist())
    print(
        "  L2", [round(v, 2) for v in (adversarial - setup.images).flatten(1).norm(dim=1).tolist()]
    )


if __name__ == "__main__":
    main()
