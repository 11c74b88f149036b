"""Ask "What shape is on the left?" about hand-drawn layouts like demo/sample.png's (issue 19).

One object in the left third, two stacked in the right half, on canvases from 300x300 to 500x250; the
generator's scenes scatter objects uniformly, so this layout is rare in the chat benchmark.

    python bench/side_probe.py builtin:synth-small [--count 24] [--seed 0]
"""

from __future__ import annotations

import argparse
import random
import sys


def main() -> int:
    from PIL import Image, ImageDraw

    from mobile_mllm.eval.synthetic import COLOURS, SHAPES, _polygon
    from mobile_mllm.runtime.session import Session

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="model directory or builtin:NAME")
    parser.add_argument("--count", type=int, default=24)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    session = Session.from_dir(args.model)
    rng = random.Random(args.seed)
    right = 0
    for trial in range(args.count):
        width, height = rng.choice([(364, 182), (400, 300), (300, 300), (500, 250)])
        image = Image.new("RGB", (width, height), (236, 241, 246))
        draw = ImageDraw.Draw(image)
        shapes, colours, radius = rng.sample(SHAPES, 3), rng.sample(list(COLOURS), 3), 17
        places = [(rng.randint(25, width // 3), rng.randint(30, height - 30)),
                  (rng.randint(width // 2 + 30, width - 30), rng.randint(25, height // 2 - 20)),
                  (rng.randint(width // 2 + 30, width - 30), rng.randint(height // 2 + 20, height - 25))]
        for shape, colour, (x, y) in zip(shapes, colours, places):
            if shape == "circle":
                draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=COLOURS[colour])
            else:
                draw.polygon(_polygon(shape, x, y, radius), fill=COLOURS[colour])
        answer = session.ask("What shape is on the left?", image).text.strip()
        right += answer == shapes[0]
        print(f"{trial:2d} {width}x{height} {list(zip(colours, shapes))} -> {answer}")
    print(f"{right}/{args.count} right")
    return 0


if __name__ == "__main__":
    sys.exit(main())
