"""Ask "What shape is on the left?" about hand-drawn layouts like demo/sample.png's (issue 19).

One object in the left third, two stacked in the right half, on canvases from 300x300 to 500x250; the
generator's scenes scatter objects uniformly, so this layout is rare in the chat benchmark. Also says
whether the left object is the first object in the image tokens' order (tiles row by row), the
shortcut a model may take for "on the left".

    python bench/side_probe.py builtin:synth-small [--count 24] [--seed 0]
"""

from __future__ import annotations

import argparse
import random
import sys


def main() -> int:
    from PIL import Image, ImageDraw

    from mobile_mllm.errors import MobileMLLMError
    from mobile_mllm.eval.synthetic import COLOURS, SHAPES, _polygon
    from mobile_mllm.runtime.session import Session
    from mobile_mllm.vision.processor import plan_tiles
    from mobile_mllm.vision.grid import Size

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="model directory or builtin:NAME")
    parser.add_argument("--count", type=int, default=24)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.count < 1:
        parser.error(f"--count must be >= 1, got {args.count}")
    try:
        session = Session.from_dir(args.model)
    except MobileMLLMError as e:
        print(f"side_probe.py: error: {e}", file=sys.stderr)
        return 2
    rng = random.Random(args.seed)
    right = 0
    in_order = {True: [0, 0], False: [0, 0]}
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
        # which object the image tokens show first (tiles in model order, thumbnail aside)
        plan = plan_tiles(Size(width, height), session.vision)
        local = [b for i, b in enumerate(plan.boxes) if i != plan.thumbnail_index]
        first = min(range(3), key=lambda k: next(i for i, b in enumerate(local)
                                                 if b.left <= places[k][0] < b.right and b.top <= places[k][1] < b.bottom))
        in_order[first == 0][0] += answer == shapes[0]
        in_order[first == 0][1] += 1
        print(f"{trial:2d} {width}x{height} grid {plan.grid.cols}x{plan.grid.rows} {list(zip(colours, shapes))} "
              f"-> {answer} (first in tile order: {shapes[first]})")
    print(f"{right}/{args.count} right")
    for is_first, (good, total) in sorted(in_order.items(), reverse=True):
        print(f"  the left object {'is' if is_first else 'is not'} the first in tile order: {good}/{total} right")
    return 0


if __name__ == "__main__":
    sys.exit(main())
