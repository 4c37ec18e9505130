#!/usr/bin/env python3
"""Write small NumPy-made .npy files as seed corpora for the fuzz targets.

Usage: make_seeds.py [OUT_DIR]   (default: the directory of this script)

Writes OUT_DIR/npy_read/*.npy (whole files) and OUT_DIR/npy_header/*.npy
(the same files cut to preamble + at most 16 data bytes) plus a few
hand-written headers NumPy accepts (Python 2 longs, odd spacing, key order).
Every file is a few hundred bytes; the whole set stays well under 1 MB.
Deterministic: running it twice gives identical files.
"""
import io
import os
import sys
import warnings

import numpy as np
from numpy.lib import format as npformat

OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))

DESCRS = ['|b1', '|i1', '|u1', '<i2', '<u2', '<i4', '<u4', '<i8', '<u8',
          '<f2', '<f4', '<f8', '<c8', '<c16']
BIG = ['>i2', '>u2', '>i4', '>u4', '>i8', '>u8', '>f2', '>f4', '>f8', '>c8', '>c16']


def values(dtype, shape):
    n = int(np.prod(shape, dtype=np.int64))
    if dtype.kind == 'b':
        return (np.arange(n) % 3 == 1).reshape(shape)
    a = (np.arange(n) * 31 + 7) % 97
    if dtype.kind in 'fc':
        a = a / 7.0 - 3.0
    if dtype.kind == 'c':
        a = a + 1j * (a[::-1] if n else a)
    if dtype.kind == 'i':
        a = a - 48
    return a.astype(dtype).reshape(shape)


def save(name, array, version=None, fortran=None):
    buf = io.BytesIO()
    if fortran is not None:
        array = np.asfortranarray(array) if fortran else np.ascontiguousarray(array)
    if version is None:
        np.save(buf, array, allow_pickle=False)
    else:
        npformat.write_array(buf, array, version=version, allow_pickle=False)
    emit(name, buf.getvalue())


def emit(name, data):
    assert len(data) <= 8192, (name, len(data))
    for target, blob in (('npy_read', data), ('npy_header', header_only(data))):
        d = os.path.join(OUT, target)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, name + '.npy'), 'wb') as f:
            f.write(blob)


def header_only(data):
    major = data[6]
    if major == 1:
        hlen = int.from_bytes(data[8:10], 'little') + 10
    else:
        hlen = int.from_bytes(data[8:12], 'little') + 12
    return data[:hlen + 16]


def slug(descr):
    return descr.replace('<', 'le_').replace('>', 'be_').replace('|', 'na_')


def main():
    shapes = [(), (0,), (5,), (2, 3), (0, 3), (3, 0, 2), (2, 1, 3, 1, 2)]
    for descr in DESCRS:
        dt = np.dtype(descr)
        for shape in shapes:
            tag = 'x'.join(map(str, shape)) or 'scalar'
            save(f'{slug(descr)}_{tag}', values(dt, shape))
        save(f'{slug(descr)}_F_3x4', values(dt, (3, 4)), fortran=True)
        save(f'{slug(descr)}_F_2x3x2', values(dt, (2, 3, 2)), fortran=True)
        for version in [(1, 0), (2, 0), (3, 0)]:
            save(f'{slug(descr)}_v{version[0]}_4', values(dt, (4,)), version=version)
    for descr in BIG:
        dt = np.dtype(descr)
        save(f'{slug(descr)}_6', values(dt, (6,)))
        save(f'{slug(descr)}_scalar', values(dt, ()))
        save(f'{slug(descr)}_F_2x3', values(dt, (2, 3)), fortran=True)
        save(f'{slug(descr)}_v2_2x2', values(dt, (2, 2)), version=(2, 0))
    # Many dimensions (NumPy allows up to 64).
    save('le_f8_ndim32', values(np.dtype('<f8'), (1,) * 31 + (2,)))
    save('na_u1_ndim64', values(np.dtype('|u1'), (1,) * 64))
    save('le_i4_ndim64_F', values(np.dtype('<i4'), (1,) * 62 + (2, 1)), fortran=True)
    save('na_b1_ndim12_empty', values(np.dtype('|b1'), (2,) * 11 + (0,)))
    # Large dims with no data, big-number parsing.
    save('le_f8_0xbig', np.empty((0, 123456789012), dtype='<f8'))
    save('le_c16_big_x0', np.empty((2 ** 40, 0), dtype='<c16'))
    # A version 3.0 header is utf-8; NumPy writes it for non-latin-1 text,
    # which plain dtypes never have, so force the version.
    save('le_u8_v3_2x2_F', values(np.dtype('<u8'), (2, 2)), version=(3, 0), fortran=True)
    # Headers NumPy's reader accepts but np.save never writes.
    for name, text in [
        ('hand_py2_long', "{'descr': '<i8', 'fortran_order': False, 'shape': (2L, 3L), }"),
        ('hand_dq_keys', '{"shape": (1,), "descr": "<f4", "fortran_order": True}'),
        ('hand_tight', "{'descr':'|u1','fortran_order':False,'shape':(3,)}"),
        ('hand_ws', "\t{ 'fortran_order' :\tFalse ,\n 'shape' : ( 2 , ) , 'descr' : '=i2' }"),
        ('hand_underscore', "{'descr': '|i1', 'shape': (1_0,), 'fortran_order': False}"),
        ('hand_pipe_f8', "{'descr': '|f8', 'fortran_order': False, 'shape': (), }"),
    ]:
        d = eval(text.replace('L', ''), {})  # the dict the text denotes
        n = int(np.prod(d['shape'], dtype=np.int64)) * np.dtype(d['descr']).itemsize
        body = text.encode('latin1') + b'\n'
        data = (b'\x93NUMPY\x01\x00' + len(body).to_bytes(2, 'little') + body
                + bytes((i * 7) % 256 for i in range(n)))
        # NumPy itself must accept the file.
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')  # 'created on Python 2' for the L suffixes
            np.load(io.BytesIO(data), allow_pickle=False)
        emit(name, data)


if __name__ == '__main__':
    main()
