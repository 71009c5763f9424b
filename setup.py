from setuptools import setup

setup(cffi_modules=["csrc/build.py:kernels_ffi", "csrc/build.py:hw_ffi"])
