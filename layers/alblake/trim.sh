#!/bin/sh
# Trim the layer's site-packages: drop what alblake never imports. Proven safe by `make layer-importcheck`
# (x86_64 build of the same trimmed layout: import checks + a conversion run with python3.13).
# Usage: trim.sh SITE_DIR [STRIP_PROGRAM]
set -eu
site=$1
strip_prog=${2:-}
cd "$site"

# Packaging leftovers, test suites, C/Cython headers and sources.
find . -name __pycache__ -type d -prune -exec rm -rf {} +
rm -rf pyarrow/tests pyarrow/include pyarrow/src numpy/tests numpy/*/tests numpy/_core/include \
       numpy/f2py numpy/testing/_private/extbuild.py numpy/_pyinstaller numpy/doc
find pyarrow numpy -type d -name tests -prune -exec rm -rf {} +
find . \( -name '*.pxd' -o -name '*.pyx' -o -name '*.pxi' -o -name '*.h' -o -name '*.hpp' \
          -o -name '*.cc' -o -name '*.cpp' -o -name '*.pyi' \) -type f -delete
rm -rf bin

# pyarrow components alblake does not use (it uses pyarrow core, compute, csv, parquet). NOT removable:
# libarrow_substrait, libarrow_dataset and libarrow_acero -- libarrow_python (hence `import pyarrow`) links
# them. Removable: Flight, the S3/HDFS/GCS/Azure filesystems (we read S3 through boto3), ORC, CUDA, the C++
# test module, and the unversioned/fully-versioned copies of libarrow_python* (wheels cannot hold symlinks,
# so pip writes three identical files; the extensions load the soname `.so.NNNN`).
rm -f pyarrow/libarrow_flight.so* pyarrow/libarrow_python_flight.so* pyarrow/_flight.*.so pyarrow/flight.py
rm -f pyarrow/libgandiva.so* pyarrow/gandiva.*.so
rm -f pyarrow/_cuda.*.so pyarrow/cuda.py
rm -f pyarrow/_orc.*.so pyarrow/orc.py pyarrow/_dataset_orc.*.so
rm -f pyarrow/_hdfs.*.so pyarrow/_azurefs.*.so pyarrow/_gcsfs.*.so pyarrow/_s3fs.*.so pyarrow/libarrow_s3.so*
rm -f pyarrow/_pyarrow_cpp_tests.*.so
for lib in pyarrow/libarrow_python.so pyarrow/libarrow_python_parquet_encryption.so; do
  for extra in "$lib" "$lib".*.*.*; do [ -e "$extra" ] && rm -f "$extra"; done
done
# X-Ray SDK: keep core only (patchers for SQLAlchemy, Django, Flask etc. are unused).
rm -rf aws_xray_sdk/ext/django aws_xray_sdk/ext/flask aws_xray_sdk/ext/flask_sqlalchemy \
       aws_xray_sdk/ext/sqlalchemy aws_xray_sdk/ext/sqlalchemy_core aws_xray_sdk/ext/pynamodb \
       aws_xray_sdk/ext/psycopg2 aws_xray_sdk/ext/pg8000 aws_xray_sdk/ext/pymysql aws_xray_sdk/ext/aiohttp

# Strip symbols from pyarrow's shared libraries when a strip for the target arch is available. Never strip
# auditwheel-repaired vendored libraries (numpy.libs/, *.libs/): patchelf-edited ELF files break when
# stripped ("ELF load command address/offset not page-aligned").
if [ -n "$strip_prog" ] && command -v "$strip_prog" >/dev/null 2>&1; then
  find pyarrow -name '*.so*' -type f -exec "$strip_prog" --strip-unneeded {} +
else
  echo "note: ${strip_prog:-strip} not found; shared libraries not stripped"
fi
