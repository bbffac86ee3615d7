"""The peer, side by side: junyanz/pytorch-CycleGAN-and-pix2pix's CycleGAN step on this CPU.

Runs in its own environment (`make bench-peer` makes `.venv-peer` with PyTorch for the CPU;
nothing of usmr_tf is imported) so the ratio in docs/performance.md is measured on the same
machine in the same session as `bench_train.py`'s `cyclegan_resnet9`.

The networks and the step are those of the peer's `cycle_gan` model (models/networks.py,
models/cycle_gan_model.py), rewritten here without their option parsing:
`ResnetGenerator(ngf=64, n_blocks=9)` with reflection padding, `InstanceNorm2d(affine=False)`,
transposed-conv upsampling; `NLayerDiscriminator(ndf=64, n_layers=3)` (70x70 PatchGAN); LSGAN
(MSE), cycle weight 10, identity 0.5; Adam 2e-4 / (0.5, 0.999); one step = G_A and G_B forward
and backward with the discriminators frozen, then D_A and D_B on pooled fakes (50 images).
Weights N(0, 0.02). FLOPs are counted by torch's FlopCounterMode over one step.

    .venv-peer/bin/python benchmarks/peer_cyclegan_torch.py [--size 128] [--batch 8]
        [--threads 2] [--repeats 3]

Measures and prints (and merges a `peer` section into benchmarks/results.json).
"""

import argparse
import json
import os
import pathlib
import random
import time

import torch
from torch import nn

RESULTS = pathlib.Path(__file__).resolve().parent / "results.json"


class ResnetBlock(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.conv_block = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3), nn.InstanceNorm2d(dim), nn.ReLU(True),
            nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3), nn.InstanceNorm2d(dim))

    def forward(self, x):
        return x + self.conv_block(x)


def resnet_generator(input_nc=1, output_nc=1, ngf=64, n_blocks=9):
    layers = [nn.ReflectionPad2d(3), nn.Conv2d(input_nc, ngf, 7), nn.InstanceNorm2d(ngf),
              nn.ReLU(True)]
    for i in range(2):
        mult = 2 ** i
        layers += [nn.Conv2d(ngf * mult, ngf * mult * 2, 3, stride=2, padding=1),
                   nn.InstanceNorm2d(ngf * mult * 2), nn.ReLU(True)]
    layers += [ResnetBlock(ngf * 4) for _ in range(n_blocks)]
    for i in range(2):
        mult = 2 ** (2 - i)
        layers += [nn.ConvTranspose2d(ngf * mult, ngf * mult // 2, 3, stride=2, padding=1,
                                      output_padding=1),
                   nn.InstanceNorm2d(ngf * mult // 2), nn.ReLU(True)]
    layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, output_nc, 7), nn.Tanh()]
    return nn.Sequential(*layers)


def patch_discriminator(input_nc=1, ndf=64, n_layers=3):
    layers = [nn.Conv2d(input_nc, ndf, 4, 2, 1), nn.LeakyReLU(0.2, True)]
    mult = 1
    for n in range(1, n_layers):
        prev, mult = mult, min(2 ** n, 8)
        layers += [nn.Conv2d(ndf * prev, ndf * mult, 4, 2, 1), nn.InstanceNorm2d(ndf * mult),
                   nn.LeakyReLU(0.2, True)]
    prev, mult = mult, min(2 ** n_layers, 8)
    layers += [nn.Conv2d(ndf * prev, ndf * mult, 4, 1, 1), nn.InstanceNorm2d(ndf * mult),
               nn.LeakyReLU(0.2, True), nn.Conv2d(ndf * mult, 1, 4, 1, 1)]
    return nn.Sequential(*layers)


def init_weights(net):
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            nn.init.zeros_(m.bias)


class ImagePool:
    def __init__(self, size=50):
        self.size, self.images = size, []

    def query(self, images):
        out = []
        for image in images:
            image = image.unsqueeze(0)
            if len(self.images) < self.size:
                self.images.append(image)
                out.append(image)
            elif random.uniform(0, 1) > 0.5:
                i = random.randint(0, self.size - 1)
                out.append(self.images[i].clone())
                self.images[i] = image
            else:
                out.append(image)
        return torch.cat(out, 0)


class CycleGANStep:
    def __init__(self):
        self.g_a, self.g_b = resnet_generator(), resnet_generator()
        self.d_a, self.d_b = patch_discriminator(), patch_discriminator()
        for net in (self.g_a, self.g_b, self.d_a, self.d_b):
            init_weights(net)
        self.opt_g = torch.optim.Adam(list(self.g_a.parameters()) + list(self.g_b.parameters()),
                                      lr=2e-4, betas=(0.5, 0.999))
        self.opt_d = torch.optim.Adam(list(self.d_a.parameters()) + list(self.d_b.parameters()),
                                      lr=2e-4, betas=(0.5, 0.999))
        self.pool_a, self.pool_b = ImagePool(), ImagePool()
        self.mse, self.l1 = nn.MSELoss(), nn.L1Loss()

    def gan(self, pred, real):
        return self.mse(pred, torch.full_like(pred, 1.0 if real else 0.0))

    def __call__(self, real_a, real_b, lambda_cyc=10.0, lambda_idt=0.5):
        fake_b = self.g_a(real_a)
        rec_a = self.g_b(fake_b)
        fake_a = self.g_b(real_b)
        rec_b = self.g_a(fake_a)
        for d in (self.d_a, self.d_b):
            d.requires_grad_(False)
        self.opt_g.zero_grad()
        idt_a = self.g_a(real_b)
        idt_b = self.g_b(real_a)
        loss_g = (self.gan(self.d_a(fake_b), True) + self.gan(self.d_b(fake_a), True)
                  + lambda_cyc * (self.l1(rec_a, real_a) + self.l1(rec_b, real_b))
                  + lambda_cyc * lambda_idt * (self.l1(idt_a, real_b) + self.l1(idt_b, real_a)))
        loss_g.backward()
        self.opt_g.step()
        for d in (self.d_a, self.d_b):
            d.requires_grad_(True)
        self.opt_d.zero_grad()
        loss_d = 0.0
        for d, real, fake in ((self.d_a, real_b, self.pool_b.query(fake_b)),
                              (self.d_b, real_a, self.pool_a.query(fake_a))):
            loss = 0.5 * (self.gan(d(real), True) + self.gan(d(fake.detach()), False))
            loss.backward()
            loss_d = loss_d + loss.item()
        self.opt_d.step()
        return float(loss_g.item()), loss_d


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    random.seed(0)
    torch.set_num_threads(args.threads)
    step = CycleGANStep()
    a = torch.rand(args.batch, 1, args.size, args.size) * 2 - 1
    b = torch.rand(args.batch, 1, args.size, args.size) * 2 - 1
    step(a, b)  # warm-up
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        step(a, b)
    flops = counter.get_total_flops()
    times = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        step(a, b)
        times.append(time.perf_counter() - t0)
    best = min(times)
    print(f"peer CycleGAN (junyanz networks), torch {torch.__version__}, {args.threads} threads, "
          f"{args.size}x{args.size} batch {args.batch}: {best:.2f} s/step (best of "
          f"{args.repeats}: {', '.join(f'{t:.2f}' for t in times)}), {flops / 1e12:.2f} TFLOP/step, "
          f"{flops / best / 1e9:.0f} GFLOP/s, load {os.getloadavg()[0]:.1f}")
    if not args.no_write:
        data = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
        data["peer"] = {"command": "benchmarks/peer_cyclegan_torch.py", "torch": torch.__version__,
                        "threads": args.threads, "size": args.size, "batch": args.batch,
                        "step_s": best, "step_times_s": times, "flops_step": flops,
                        "gflops": flops / best / 1e9, "loadavg_1m": os.getloadavg()[0],
                        "written": time.strftime("%Y-%m-%d %H:%M:%S")}
        RESULTS.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
