#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets (Tools/fuzz/corpus/<Target>/): small valid files made
by the trusted tools (pydicom, nibabel, h5py, safetensors, Pillow) plus a few near-misses, so the
fuzzer starts from inputs that reach deep into each reader. Run through Tools/python-env:
    Tools/python-env Tools/fuzz/make_seeds.py
The corpora are committed; rerunning rewrites them (deterministic apart from gzip/HDF5 timestamps)."""
import gzip, io, json, os, shutil, struct, sys
import numpy as np

here = os.path.dirname(os.path.abspath(__file__))
root = os.path.join(here, "corpus")


def folder(name):
    d = os.path.join(root, name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    return d


def put(d, name, data):
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# DICOM: tiny CT slices, explicit and implicit VR little endian, signed and unsigned, with rescale.
def dicom_seeds():
    import pydicom
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, CTImageStorage
    d = folder("FuzzDICOM")
    rng = np.random.default_rng(0)
    for i, (syntax, signed, rows, cols) in enumerate([
            (ExplicitVRLittleEndian, True, 8, 8), (ImplicitVRLittleEndian, False, 6, 10),
            (ExplicitVRLittleEndian, False, 4, 4)]):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = f"1.2.826.0.1.3680043.9.7000.{i}.1"
        meta.TransferSyntaxUID = syntax
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID = CTImageStorage
        ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
        ds.PatientID = f"FUZZ{i}"
        ds.StudyInstanceUID = f"1.2.826.0.1.3680043.9.7000.{i}.2"
        ds.SeriesInstanceUID = f"1.2.826.0.1.3680043.9.7000.{i}.3"
        ds.Modality = "CT"
        ds.ImagePositionPatient = [-10.0, -10.0, 5.0 * i]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.PixelSpacing = [0.7, 0.7]
        ds.SliceThickness = 2.5
        ds.InstanceNumber = i + 1
        ds.Rows, ds.Columns = rows, cols
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 12, 11
        ds.PixelRepresentation = 1 if signed else 0
        ds.RescaleSlope, ds.RescaleIntercept = 1, (-1024 if not signed else 0)
        px = rng.integers(-1000 if signed else 0, 2000, size=(rows, cols)).astype(np.int16 if signed else np.uint16)
        ds.PixelData = px.tobytes()
        buf = io.BytesIO()
        pydicom.dcmwrite(buf, ds, enforce_file_format=True, little_endian=True, implicit_vr=(syntax == ImplicitVRLittleEndian))
        put(d, f"ct{i}.dcm", buf.getvalue())


def nifti_seeds():
    import nibabel as nib
    d = folder("FuzzNIfTI")
    rng = np.random.default_rng(1)
    for i, (dtype, shape) in enumerate([(np.int16, (4, 4, 3)), (np.float32, (3, 5, 2)), (np.uint8, (2, 2, 2))]):
        data = rng.integers(-100, 100, size=shape).astype(dtype) if dtype != np.uint8 else rng.integers(0, 255, size=shape).astype(dtype)
        affine = np.diag([0.8, 0.8, 2.5, 1.0]); affine[:3, 3] = [-5, -6, 7]
        img = nib.Nifti1Image(data, affine)
        img.header.set_qform(affine, code=1); img.header.set_sform(affine, code=1)
        raw = img.to_bytes()
        put(d, f"v{i}.nii", raw)
        if i == 0:
            put(d, f"v{i}.nii.gz", gzip.compress(raw, mtime=0))
    img2 = nib.Nifti2Image(rng.integers(-5, 5, size=(2, 3, 2)).astype(np.int16), np.eye(4))
    put(d, "v2.nii2.nii", img2.to_bytes())


def safetensors_seeds():
    from safetensors.numpy import save
    d = folder("FuzzSafeTensors")
    rng = np.random.default_rng(2)
    put(d, "f32.safetensors", save({"w": rng.standard_normal((3, 4)).astype(np.float32), "b": np.zeros(4, np.float32)},
                                   metadata={"format": "pt"}))
    put(d, "f16.safetensors", save({"w": rng.standard_normal((2, 2)).astype(np.float16)}))
    put(d, "mixed.safetensors", save({"i": np.arange(3, dtype=np.int64), "x": np.ones((1, 2, 2), np.float32)}))
    # bf16 by hand: the header names BF16 over raw 16-bit words.
    header = json.dumps({"w": {"dtype": "BF16", "shape": [2], "data_offsets": [0, 4]}}).encode()
    put(d, "bf16.safetensors", struct.pack("<Q", len(header)) + header + b"\x80\x3f\x00\x40")


def hdf5_seeds():
    import h5py
    d = folder("FuzzFeatureStore")
    rng = np.random.default_rng(3)
    def axial(path, n, dim, half=False):
        with h5py.File(path, "w", libver="earliest") as f:
            f.create_dataset("feats", data=rng.standard_normal((n, dim)).astype(np.float16 if half else np.float32))
            f.create_dataset("slice_index", data=np.arange(n, dtype=np.int32))
            f.create_dataset("z_mm", data=(np.arange(n) * 2.5).astype(np.float32))
            f.create_dataset("window", data=np.zeros(n, np.int32))
            for k, v in [("axial_version", "0.1.0"), ("encoder", "vit_test"), ("encoder_sha256", "0" * 64),
                         ("windows", json.dumps([{"level": 40, "name": "mediastinum", "width": 400}])),
                         ("patient_id", "P0001"), ("study_uid", "1.2"), ("series_uid", "1.3"),
                         ("preprocessing", json.dumps({"size": 16})), ("created", "2026-12-03T00:00:00Z")]:
                f.attrs[k] = v
            f.attrs["feat_dim"] = np.int64(dim)
            f.attrs["spacing_mm"] = np.array([0.7, 0.7, 2.5])
    axial(os.path.join(d, "axial.h5"), 3, 4)
    axial(os.path.join(d, "axial_f16.h5"), 2, 3, half=True)
    with h5py.File(os.path.join(d, "clear.h5"), "w") as f:
        f.create_dataset("feats", data=rng.standard_normal((2, 4)).astype(np.float32))
    with h5py.File(os.path.join(d, "clam.h5"), "w") as f:
        f.create_dataset("features", data=rng.standard_normal((2, 4)).astype(np.float32))
        f.create_dataset("coords", data=np.array([[0, 0], [1, 2]], np.int64))


def png_seeds():
    from PIL import Image
    d = folder("FuzzPNG")
    rng = np.random.default_rng(4)
    def save(name, img, **kw):
        buf = io.BytesIO(); img.save(buf, format="PNG", **kw); put(d, name, buf.getvalue())
    save("gray.png", Image.fromarray(rng.integers(0, 255, (6, 5), dtype=np.uint8), "L"))
    save("rgb.png", Image.fromarray(rng.integers(0, 255, (4, 4, 3), dtype=np.uint8), "RGB"))
    save("rgba.png", Image.fromarray(rng.integers(0, 255, (3, 3, 4), dtype=np.uint8), "RGBA"))
    save("palette.png", Image.fromarray(rng.integers(0, 255, (4, 4, 3), dtype=np.uint8), "RGB").convert("P"))
    save("gray16.png", Image.fromarray(rng.integers(0, 65535, (3, 4), dtype=np.uint16).astype(np.int32), "I").convert("I;16"))
    save("interlaced.png", Image.fromarray(rng.integers(0, 255, (8, 8), dtype=np.uint8), "L"), optimize=False)


def csv_seeds():
    d = folder("FuzzCSV")
    put(d, "labels.csv", b"patient_id,stage,age\nP0001,III,60\nP0002,I,\nP0003,NA,71\n")
    put(d, "labels_bom_crlf.csv", b"\xef\xbb\xbfpatient_id,stage\r\n\"P0001\",\"1\"\r\nP0002,0\r\n")
    put(d, "lesions_axial.csv", b"patient_id,slice_index,x1,y1,x2,y2,series_uid,path\nP0001,3,10,12,40.5,44,1.2.3,P0001/s0003.png\n")
    put(d, "DL_info.csv", b"File_name,Patient_index,Key_slice_index,Bounding_boxes,Image_size\n"
        b"000001_01_01_109.png,1,109,\"233.5, 95.0, 354.3, 194.8\",\"512, 512\"\n")


def yaml_seeds():
    d = folder("FuzzYAML")
    tasks = os.path.join(here, "..", "..", "Manifests", "tasks")
    for name in sorted(os.listdir(tasks)):
        if name.endswith(".yaml"):
            shutil.copy(os.path.join(tasks, name), os.path.join(d, "task_" + name))
    put(d, "config.yaml", b"ingest:\n  input: scans/\n  out: out/ingest\n  windows: [lung, mediastinum]\n"
        b"  size: 224\n  fraction: 0.25\n  resume: true\n  mode: b\n  inputs: [a, b]\ncrossval:\n  folds: 3\n  lr: 1e-3\n")
    put(d, "anchors.yaml", b"base: &b {size: 96}\ningest:\n  <<: *b\n  windows: lung,bone\n")


for f in (dicom_seeds, nifti_seeds, safetensors_seeds, hdf5_seeds, png_seeds, csv_seeds, yaml_seeds):
    f()
total = sum(os.path.getsize(os.path.join(dp, n)) for dp, _, ns in os.walk(root) for n in ns)
print(f"seeds written under {root}: {sum(len(ns) for _, _, ns in os.walk(root))} files, {total} bytes")
