# The boto3 + NumPy peer of bench/remote.mjs: a long-lived process, so
# interpreter start-up and imports are not timed. One JSON request per stdin
# line, one JSON answer per stdout line with its own elapsed seconds.
#   {"op": "get", "key": K}       np.load(io.BytesIO(get_object(...)['Body'].read()))
#   {"op": "source", "key": K}    the same, untimed, kept as the array later puts store
#   {"op": "put" | "upload", "key": K}   np.save into a BytesIO, then put_object / upload_fileobj
#   {"op": "versions"}
import gc
import io
import json
import os
import sys
import time

import boto3
import botocore
import numpy as np
from botocore.config import Config

env = os.environ
# Over plain HTTP botocore SHA-256s every request body for the signature, which
# over HTTPS (any real S3) it does not: turning that off keeps it as on HTTPS.
# Its default CRC32 request checksums stay on.
s3 = boto3.client(
    's3',
    endpoint_url=env['AWS_ENDPOINT_URL'],
    region_name=env['AWS_REGION'],
    aws_access_key_id=env['AWS_ACCESS_KEY_ID'],
    aws_secret_access_key=env['AWS_SECRET_ACCESS_KEY'],
    config=Config(s3={'addressing_style': 'path', 'payload_signing_enabled': False}),
)
bucket = env['NFC_S3_BUCKET']
source = None


def load(key):
    t0 = time.perf_counter()
    body = s3.get_object(Bucket=bucket, Key=key)['Body'].read()
    t1 = time.perf_counter()
    a = np.load(io.BytesIO(body))
    t2 = time.perf_counter()
    return a, t2 - t0, t1 - t0


def serve(req):
    global source
    op = req['op']
    if op == 'get':
        a, t, t_get = load(req['key'])
        return {'t': t, 'get': t_get, 'bytes': int(a.nbytes), 'first': float(a[0]), 'last': float(a[-1])}
    if op == 'source':
        source = None
        gc.collect()
        source = load(req['key'])[0]
        return {'bytes': int(source.nbytes)}
    if op in ('put', 'upload'):
        t0 = time.perf_counter()
        buf = io.BytesIO()
        np.save(buf, source)
        buf.seek(0)
        if op == 'put':
            s3.put_object(Bucket=bucket, Key=req['key'], Body=buf)
        else:
            s3.upload_fileobj(buf, bucket, req['key'])  # default TransferConfig: 8 MiB parts, 10 threads
        return {'t': time.perf_counter() - t0}
    if op == 'versions':
        return {'python': sys.version.split()[0], 'numpy': np.__version__, 'boto3': boto3.__version__, 'botocore': botocore.__version__}
    raise ValueError(f'unknown op {op}')


for line in sys.stdin:
    try:
        out = serve(json.loads(line))
    except Exception as e:  # answered, so the Node side reports it as that cell's error
        out = {'error': f'{type(e).__name__}: {e}'.splitlines()[0][:160]}
    gc.collect()
    print(json.dumps(out), flush=True)
