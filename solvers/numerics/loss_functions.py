"""The registry losses L(f, y) as scalar numba-compilable functions, in the kernels' form.

Every function takes ``(r, y, c)``: the residual r = y - f as the kernels compute it (the
label minus the network's output f = a.sigma(u)), the label y and the loss's parameter c (the
Huber threshold; ignored by the others). ``value`` is L, ``d1`` is dL/df and ``d2`` the
absolutely continuous part of d^2L/df^2. Losses of the residual (square, Huber) use r
directly, so that the square loss keeps the exact arithmetic it has always had
(F = -(y - f) a * sigma'(u)); margin losses (logistic, hinge) use f = y - r. Codes, names and
Dirac masses: :mod:`.table`.
"""

from __future__ import annotations

import math

__all__ = ["square_value", "square_d1", "square_d2", "logistic_value", "logistic_d1",
           "logistic_d2", "hinge_value", "hinge_d1", "hinge_d2", "huber_value", "huber_d1",
           "huber_d2"]


# square: L = (y - f)^2 / 2
def square_value(r, y, c):
    return 0.5 * r * r


def square_d1(r, y, c):
    return -r


def square_d2(r, y, c):
    return 1.0


# logistic: L = log(1 + exp(-y f)), with margin m = y f; stable for any m
def logistic_value(r, y, c):
    m = y * (y - r)
    return max(-m, 0.0) + math.log1p(math.exp(-abs(m)))


def logistic_d1(r, y, c):
    # -y sigmoid(-m), sigmoid(-m) = 1 / (1 + e^m) written without overflow
    m = y * (y - r)
    if m >= 0.0:
        e = math.exp(-m)
        return -y * e / (1.0 + e)
    return -y / (1.0 + math.exp(m))


def logistic_d2(r, y, c):
    # y^2 sigmoid(m) sigmoid(-m)
    m = y * (y - r)
    e = math.exp(-abs(m))
    return y * y * e / ((1.0 + e) * (1.0 + e))


# hinge: L = max(0, 1 - y f); d^2L/df^2 has a Dirac mass |y| at f = 1 / y
def hinge_value(r, y, c):
    return max(0.0, 1.0 - y * (y - r))


def hinge_d1(r, y, c):
    return -y if y * (y - r) < 1.0 else 0.0


def hinge_d2(r, y, c):
    return 0.0


# Huber with threshold c: r^2 / 2 for |r| <= c, c (|r| - c / 2) beyond (dL/df continuous)
def huber_value(r, y, c):
    a = abs(r)
    return 0.5 * r * r if a <= c else c * (a - 0.5 * c)


def huber_d1(r, y, c):
    if r > c:
        return -c
    if r < -c:
        return c
    return -r


def huber_d2(r, y, c):
    return 1.0 if abs(r) <= c else 0.0
