#!/usr/bin/env bash
# Rebuild the shipped model zoo (assets/models). Every model card records the exact command and its metrics;
# `python -m vizcore evaluate --model NAME` reproduces the test accuracy. Needs the datasets' files
# (Fashion-MNIST from Debian's dataset-fashion-mnist or --data-root, Yale faces via --data-root).
set -euo pipefail
cd "$(dirname "$0")/../.."
z() { python -m vizcore train --zoo --overwrite "$@"; }
z --dataset digits --arch linear --epochs 60 --lr 0.01 --batch-size 64
z --dataset digits --arch mlp --epochs 80 --lr 0.01 --batch-size 64
z --dataset digits --arch cnn --epochs 30 --batch-size 64
z --dataset yale-faces --arch lenet_faces --lr 0.003 --epochs 250 --batch-size 16
z --dataset fashion-mnist --arch linear --epochs 10
z --dataset fashion-mnist --arch mlp --epochs 15
z --dataset fashion-mnist --arch cnn_tiny --epochs 15
z --dataset fashion-mnist --arch cnn_s --epochs 12
z --dataset fashion-mnist --arch cnn --epochs 12
z --dataset fashion-mnist --arch cnn_l --epochs 8
z --dataset uci-shuttle --arch mlp10 --epochs 10
z --dataset uci-pendigits --arch mlp10 --epochs 40
z --dataset uci-letter --arch mlp10 --epochs 50
