"""Seeded corpus of malformed (and a few odd but valid) PPV FITS cubes.

:func:`cube_corpus` writes each case into a folder and yields ``(kind, name, path)``.
Headers are assembled card by card as raw 80-character text, so a case can hold what
astropy would refuse to write (NaN values, a BITPIX that disagrees with the data, a
NAXISn that does not match the byte count).
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from astropy.io import fits

SHAPE = (8, 12, 12)  # (v, y, x): small, so a detection on a valid case takes milliseconds


class Raw(str):
    """A header value written verbatim into the value field (e.g. ``NAN``)."""


def base_data(shape: tuple[int, ...] = SHAPE, seed: int = 0) -> np.ndarray:
    """Noise (rms 0.1 K) plus one bright Gaussian clump, float32 ``(v, y, x)``."""
    rng = np.random.default_rng(seed)
    data = rng.normal(0.0, 0.1, shape)
    v, y, x = np.indices(shape)
    c = [(n - 1) / 2 for n in shape]
    data += 3.0 * np.exp(-(((v - c[0]) / 1.5) ** 2 + ((y - c[1]) / 2) ** 2
                           + ((x - c[2]) / 2) ** 2) / 2)
    return data.astype(np.float32)


def base_cards(shape: tuple[int, ...] = SHAPE, bitpix: int = -32) -> list[tuple[str, object]]:
    """Header cards of a valid Galactic (GLON, GLAT, VRAD km/s) cube of ``shape``."""
    cards: list[tuple[str, object]] = [
        ("SIMPLE", True), ("BITPIX", bitpix), ("NAXIS", len(shape))]
    cards += [(f"NAXIS{i}", n) for i, n in enumerate(shape[::-1], start=1)]
    cards += [
        ("CTYPE1", "GLON-CAR"), ("CRVAL1", 110.0), ("CDELT1", -0.01), ("CRPIX1", 6.5),
        ("CUNIT1", "deg"),
        ("CTYPE2", "GLAT-CAR"), ("CRVAL2", 0.0), ("CDELT2", 0.01), ("CRPIX2", 6.5),
        ("CUNIT2", "deg"),
        ("CTYPE3", "VRAD"), ("CRVAL3", -5.0), ("CDELT3", 0.2), ("CRPIX3", 1.0),
        ("CUNIT3", "km/s"),
        ("BUNIT", "K"), ("SPECSYS", "LSRK"),
    ]
    return cards


def card_image(key: str, value: object) -> str:
    """One 80-character header card; :class:`Raw` values go in verbatim."""
    if isinstance(value, Raw):
        return f"{key:<8}= {value:>20}".ljust(80)[:80]
    return fits.Card(key, value).image


def fits_bytes(cards: list[tuple[str, object]], data: bytes) -> bytes:
    """A one-HDU FITS file: the cards, END, padding, ``data``, padding."""
    header = "".join(card_image(k, v) for k, v in cards) + "END".ljust(80)
    header += " " * (-len(header) % 2880)
    return header.encode("ascii") + data + b"\0" * (-len(data) % 2880)


def data_bytes(data: np.ndarray, bitpix: int = -32) -> bytes:
    """``data`` as big-endian FITS bytes of ``bitpix``."""
    dtype = {8: ">u1", 16: ">i2", 32: ">i4", 64: ">i8", -32: ">f4", -64: ">f8"}[bitpix]
    return np.ascontiguousarray(data, dtype=dtype).tobytes()


def set_card(cards: list[tuple[str, object]], key: str, value: object) -> list[tuple[str, object]]:
    """A copy of ``cards`` with ``key`` set (replaced in place, else appended)."""
    out = list(cards)
    for i, (k, _) in enumerate(out):
        if k == key:
            out[i] = (key, value)
            return out
    out.append((key, value))
    return out


def drop_card(cards: list[tuple[str, object]], key: str) -> list[tuple[str, object]]:
    return [(k, v) for k, v in cards if k != key]


def valid_cube_bytes(shape: tuple[int, ...] = SHAPE) -> bytes:
    return fits_bytes(base_cards(shape), data_bytes(base_data(shape)))


# -- the corpus --------------------------------------------------------------------------


def _header_cases() -> Iterator[tuple[str, str, list[tuple[str, object]], bytes]]:
    """(kind, name, cards, data) with the header edited."""
    data = data_bytes(base_data())
    base = base_cards()

    for value in (None, 0, 7, 8, 16, 32, 64, -64, -16, Raw("12.5"), "abc", Raw("NAN")):
        cards = drop_card(base, "BITPIX") if value is None else set_card(base, "BITPIX", value)
        yield "cube: BITPIX / NAXIS / size", f"BITPIX={value}", cards, data
    for value in (None, 0, 1, 2, 4, 5, 999, -1, "x", Raw("3.0")):
        cards = drop_card(base, "NAXIS") if value is None else set_card(base, "NAXIS", value)
        yield "cube: BITPIX / NAXIS / size", f"NAXIS={value}", cards, data
    for axis in (1, 2, 3):
        key = f"NAXIS{axis}"
        n = dict(base)[key]
        for value in (None, 0, -3, 10**9, n - 1, n + 1, Raw("2.5"), "x"):
            cards = drop_card(base, key) if value is None else set_card(base, key, value)
            yield "cube: BITPIX / NAXIS / size", f"{key}={value}", cards, data
    # A zero-length axis with no data at all (a consistent but empty file).
    zero = set_card(base, "NAXIS3", 0)
    yield "cube: BITPIX / NAXIS / size", "NAXIS3=0 no data", zero, b""

    odd_strings = (None, "", "GARBAGE", "RA---XYZ", "VRAD-XXX", "12345", "STOKES", "FREQ")
    odd_units = (None, "", "furlong", "deg", "km/s", "Hz", "m", "???")
    odd_numbers = (None, 0.0, 1e300, -1e300, Raw("NAN"), Raw("INF"), Raw("-INF"), "abc")
    for axis in (1, 2, 3):
        for value in odd_strings:
            key = f"CTYPE{axis}"
            cards = drop_card(base, key) if value is None else set_card(base, key, value)
            yield "cube: WCS keywords", f"{key}={value!r}", cards, data
        for value in odd_units:
            key = f"CUNIT{axis}"
            cards = drop_card(base, key) if value is None else set_card(base, key, value)
            yield "cube: WCS keywords", f"{key}={value!r}", cards, data
        for key in (f"CDELT{axis}", f"CRVAL{axis}", f"CRPIX{axis}"):
            for value in odd_numbers:
                cards = drop_card(base, key) if value is None else set_card(base, key, value)
                yield "cube: WCS keywords", f"{key}={value!r}", cards, data

    contradictions = {
        "two longitude axes": [("CTYPE2", "GLON-CAR")],
        "RA with GLAT": [("CTYPE1", "RA---CAR")],
        "spectral axis first": [("CTYPE1", "VRAD"), ("CUNIT1", "km/s"), ("CTYPE3", "GLON-CAR"),
                                ("CUNIT3", "deg")],
        "two spectral axes": [("CTYPE2", "VRAD"), ("CUNIT2", "km/s")],
        "FREQ without rest frequency": [("CTYPE3", "FREQ"), ("CUNIT3", "Hz"),
                                        ("CRVAL3", 1.1e11), ("CDELT3", 1e5)],
        "FREQ with NaN rest frequency": [("CTYPE3", "FREQ"), ("CUNIT3", "Hz"),
                                         ("CRVAL3", 1.1e11), ("CDELT3", 1e5),
                                         ("RESTFRQ", Raw("NAN"))],
        "FREQ with zero rest frequency": [("CTYPE3", "FREQ"), ("CUNIT3", "Hz"),
                                          ("CRVAL3", 1.1e11), ("CDELT3", 1e5), ("RESTFRQ", 0.0)],
        "velocity in degrees": [("CUNIT3", "deg")],
        "longitude in km/s": [("CUNIT1", "km/s")],
        "WAVE without rest wavelength": [("CTYPE3", "WAVE"), ("CUNIT3", "m"),
                                         ("CRVAL3", 2.7e-3), ("CDELT3", 1e-9)],
        "celestial pole latitude 200": [("LATPOLE", 200.0)],
        "LONPOLE NaN": [("LONPOLE", Raw("NAN"))],
        "EQUINOX garbage": [("CTYPE1", "RA---SIN"), ("CTYPE2", "DEC--SIN"),
                            ("EQUINOX", "J2000x"), ("RADESYS", "XYZ")],
        "CRVAL2 beyond the pole": [("CRVAL2", 95.0)],
        "RA--- SIN at 180 degrees from the reference": [("CTYPE1", "RA---SIN"),
                                                        ("CTYPE2", "DEC--SIN"),
                                                        ("CDELT1", -30.0), ("CDELT2", 30.0)],
    }
    for name, edits in contradictions.items():
        cards = base
        for k, v in edits:
            cards = set_card(cards, k, v)
        yield "cube: WCS keywords", name, cards, data

    matrices = {
        "PC all zero": {f"PC{i}_{j}": 0.0 for i in (1, 2, 3) for j in (1, 2, 3)},
        "PC singular (celestial rows equal)": {"PC1_1": 1.0, "PC1_2": 1.0, "PC2_1": 1.0,
                                                "PC2_2": 1.0},
        "PC NaN": {"PC1_1": Raw("NAN")},
        "PC huge": {"PC1_2": 1e300},
        "PC couples velocity and position": {"PC3_1": 0.5, "PC1_3": 0.5},
        "CD all zero": {f"CD{i}_{j}": 0.0 for i in (1, 2, 3) for j in (1, 2, 3)},
        "CD singular": {"CD1_1": 0.01, "CD1_2": 0.01, "CD2_1": 0.01, "CD2_2": 0.01,
                        "CD3_3": 0.2},
        "CD and PC both": {"CD1_1": 0.01, "PC1_1": 2.0},
        "CD INF": {"CD1_1": Raw("INF"), "CD2_2": 0.01, "CD3_3": 0.2},
        "CROTA2 NaN": {"CROTA2": Raw("NAN")},
        "CROTA2 90": {"CROTA2": 90.0},
        "PC garbage string": {"PC2_2": "two"},
    }
    for name, edits in matrices.items():
        cards = base
        for k, v in edits.items():
            cards = set_card(cards, k, v)
        yield "cube: PC / CD matrix", name, cards, data

    other = {
        "RESTFRQ INF": [("RESTFRQ", Raw("INF"))],
        "BUNIT furlongs": [("BUNIT", "furlong")],
        "BUNIT empty": [("BUNIT", "")],
        "BUNIT ???": [("BUNIT", "???")],
        "BUNIT Jy/beam without beam": [("BUNIT", "Jy/beam")],
        "BUNIT Jy/beam, BMAJ NaN": [("BUNIT", "Jy/beam"), ("BMAJ", Raw("NAN")),
                                    ("BMIN", 0.001)],
        "BUNIT Jy/beam, BMAJ zero": [("BUNIT", "Jy/beam"), ("BMAJ", 0.0), ("BMIN", 0.0)],
        "BUNIT Jy/beam, beam as text": [("BUNIT", "Jy/beam"), ("BMAJ", "big"), ("BMIN", "x")],
        "DATE-OBS garbage": [("DATE-OBS", "yesterday")],
        "MJD-OBS NaN": [("MJD-OBS", Raw("NAN"))],
        "SPECSYS garbage": [("SPECSYS", "NOWHERE")],
        "BSCALE 0": [("BSCALE", 0.0)],
        "BSCALE empty": [("BSCALE", "")],
        "BSCALE NaN": [("BSCALE", Raw("NAN"))],
        "BSCALE text": [("BSCALE", "two")],
        "BZERO text": [("BZERO", "abc")],
        "BZERO INF": [("BZERO", Raw("INF"))],
        "BZERO empty": [("BZERO", "")],
        "BLANK on float data": [("BLANK", -32768)],
        "BLANK text": [("BLANK", "none")],
    }
    for name, edits in other.items():
        cards = base
        for k, v in edits:
            cards = set_card(cards, k, v)
        kind = ("cube: BSCALE / BZERO / BLANK" if name.startswith(("BSCALE", "BZERO", "BLANK"))
                else "cube: WCS keywords")
        yield kind, name, cards, data


def _int16_cases() -> Iterator[tuple[str, str, bytes]]:
    """int16 cubes with BLANK / BSCALE / BZERO."""
    values = np.round(base_data() * 1000).astype(np.int16)
    blanked = values.copy()
    blanked[0, :3, :3] = -32768
    cards = set_card(base_cards(bitpix=16), "BLANK", -32768)
    kind = "cube: BSCALE / BZERO / BLANK"
    yield kind, "int16 BLANK, scaled", fits_bytes(
        set_card(cards, "BSCALE", 0.001), data_bytes(blanked, 16))
    yield kind, "int16 BLANK, unscaled", fits_bytes(cards, data_bytes(blanked, 16))
    yield kind, "int16 every voxel BLANK", fits_bytes(
        cards, data_bytes(np.full(SHAPE, -32768, np.int16), 16))
    yield kind, "int16 BSCALE 0", fits_bytes(set_card(cards, "BSCALE", 0.0),
                                             data_bytes(blanked, 16))
    yield kind, "int16 BZERO 32768 (unsigned)", fits_bytes(
        set_card(cards, "BZERO", 32768), data_bytes(blanked, 16))
    yield kind, "int16 BLANK as text", fits_bytes(set_card(cards, "BLANK", "blank"),
                                                  data_bytes(blanked, 16))
    yield kind, "uint8 cube", fits_bytes(
        base_cards(bitpix=8), data_bytes(np.clip(base_data() * 50, 0, 255).astype(np.uint8), 8))
    yield kind, "int32 cube BSCALE 1e-4", fits_bytes(
        set_card(base_cards(bitpix=32), "BSCALE", 1e-4),
        data_bytes((base_data() * 1e4).astype(np.int32), 32))
    yield kind, "float64 cube", fits_bytes(base_cards(bitpix=-64),
                                           data_bytes(base_data(), -64))


def _value_cases() -> Iterator[tuple[str, str, bytes]]:
    """Valid headers around odd data values and shapes."""
    kind = "cube: data values / shapes"

    def one(name: str, arr: np.ndarray) -> tuple[str, str, bytes]:
        return kind, name, fits_bytes(base_cards(arr.shape), data_bytes(arr))

    yield one("all zeros", np.zeros(SHAPE, np.float32))
    yield one("constant 5", np.full(SHAPE, 5.0, np.float32))
    yield one("constant -1", np.full(SHAPE, -1.0, np.float32))
    yield one("all NaN", np.full(SHAPE, np.nan, np.float32))
    single = np.full(SHAPE, np.nan, np.float32)
    single[3, 4, 5] = 1.0
    yield one("one finite voxel", single)
    with_inf = base_data()
    with_inf[2, 3, 4] = np.inf
    with_inf[5, 6, 7] = -np.inf
    yield one("inf voxels", with_inf)
    yield one("all +inf", np.full(SHAPE, np.inf, np.float32))
    yield one("huge values", base_data() * np.float32(1e37))
    yield one("denormal values", base_data() * np.float32(1e-40))
    yield one("1x1x1 cube", np.ones((1, 1, 1), np.float32))
    yield one("one channel", base_data((1, 12, 12)))
    yield one("2x2x2 cube", base_data((2, 2, 2)))
    yield one("one pixel wide", base_data((8, 12, 1)))
    yield one("half NaN", np.where(np.arange(12) < 6, base_data(), np.nan).astype(np.float32))
    rng = np.random.default_rng(7)
    yield one("pure noise", rng.normal(0, 0.1, SHAPE).astype(np.float32))


def _multi_hdu_cases() -> Iterator[tuple[str, str, fits.HDUList]]:
    kind = "cube: HDU layout"
    header = fits.Header()
    for k, v in base_cards()[3 + len(SHAPE):]:
        header[k] = v
    cube = base_data()
    yield kind, "cube in an extension", fits.HDUList(
        [fits.PrimaryHDU(), fits.ImageHDU(cube, header)])
    yield kind, "two cubes", fits.HDUList(
        [fits.PrimaryHDU(cube, header), fits.ImageHDU(cube * 2, header)])
    yield kind, "2D image first, cube in an extension", fits.HDUList(
        [fits.PrimaryHDU(cube[0], header), fits.ImageHDU(cube, header)])
    yield kind, "cube then a table", fits.HDUList(
        [fits.PrimaryHDU(cube, header),
         fits.BinTableHDU.from_columns([fits.Column("a", "E", array=np.arange(3.0))])])
    yield kind, "a table where an image was expected", fits.HDUList(
        [fits.PrimaryHDU(),
         fits.BinTableHDU.from_columns([fits.Column("a", "E", array=np.arange(3.0))])])
    yield kind, "an ASCII table only", fits.HDUList(
        [fits.PrimaryHDU(),
         fits.TableHDU.from_columns([fits.Column("a", "E10.4", array=np.arange(3.0))])])
    yield kind, "header only, no data", fits.HDUList([fits.PrimaryHDU(header=header)])
    yield kind, "compressed cube (RICE)", fits.HDUList(
        [fits.PrimaryHDU(), fits.CompImageHDU(cube, header, compression_type="RICE_1")])
    yield kind, "compressed cube (GZIP)", fits.HDUList(
        [fits.PrimaryHDU(), fits.CompImageHDU(cube, header, compression_type="GZIP_1")])
    yield kind, "compressed 2D image", fits.HDUList(
        [fits.PrimaryHDU(), fits.CompImageHDU(cube[0], header)])
    yield kind, "4D cube, one Stokes plane", fits.HDUList(
        [fits.PrimaryHDU(cube[None], _with_stokes(header))])
    yield kind, "4D cube, two Stokes planes", fits.HDUList(
        [fits.PrimaryHDU(np.stack([cube, cube]), _with_stokes(header))])
    yield kind, "5D data", fits.HDUList([fits.PrimaryHDU(cube[None, None], header)])
    yield kind, "1D spectrum", fits.HDUList([fits.PrimaryHDU(cube[:, 0, 0], header)])


def _with_stokes(header: fits.Header) -> fits.Header:
    h = header.copy()
    h["CTYPE4"], h["CRVAL4"], h["CDELT4"], h["CRPIX4"] = "STOKES", 1.0, 1.0, 1.0
    return h


def _not_fits_cases(rng: np.random.Generator) -> Iterator[tuple[str, str, bytes]]:
    kind = "cube: not a FITS file"
    yield kind, "empty file", b""
    yield kind, "text", b"this is not a FITS file\n" * 20
    yield kind, "PNG bytes", b"\x89PNG\r\n\x1a\n" + bytes(rng.integers(0, 256, 500, np.uint8))
    yield kind, "HDF5 bytes", b"\x89HDF\r\n\x1a\n" + bytes(3000)
    yield kind, "JSON", b'{"cube": [1, 2, 3]}'
    yield kind, "HTML error page", b"<html><body>404 Not Found</body></html>"
    yield kind, "one SIMPLE card", fits.Card("SIMPLE", True).image.encode()
    yield kind, "header without END", "".join(
        card_image(k, v) for k, v in base_cards()).ljust(2880).encode()
    yield kind, "NUL bytes", bytes(5760)
    yield kind, "spaces", b" " * 2880
    for i in range(6):
        size = int(rng.integers(1, 9000))
        yield kind, f"random bytes {i} ({size} B)", bytes(rng.integers(0, 256, size, np.uint8))


def _zip_bytes() -> bytes:
    import io

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("cube.fits", valid_cube_bytes())
    return buf.getvalue()


def _write(path: Path, content: bytes | fits.HDUList) -> Path:
    if isinstance(content, fits.HDUList):
        content.writeto(path, overwrite=True)
    else:
        path.write_bytes(content)
    return path


def cube_corpus(folder: Path, seed: int = 0, l1448: Path | None = None
                ) -> Iterator[tuple[str, str, Path]]:
    """Write each malformed cube into ``folder``; yield ``(kind, name, path)``.

    Parameters
    ----------
    folder : Path
        Empty folder for the files.
    seed : int
        Seed of the random lengths, byte flips and random files.
    l1448 : Path, optional
        The bundled L1448 cube: also cut it at a few lengths (the issue's case,
        ``head -c 20000``).
    """
    rng = np.random.default_rng(seed)
    counter = iter(range(10**6))

    def target(suffix: str = ".fits") -> Path:
        return folder / f"case{next(counter):04d}{suffix}"

    for kind, name, cards, data in _header_cases():
        yield kind, name, _write(target(), fits_bytes(cards, data))
    for kind, name, content in (*_int16_cases(), *_value_cases(), *_not_fits_cases(rng)):
        yield kind, name, _write(target(), content)
    for kind, name, hdul in _multi_hdu_cases():
        yield kind, name, _write(target(), hdul)
    yield "cube: not a FITS file", "a zip named .fits", _write(target(), _zip_bytes())

    # Truncations: every card boundary of the header, the block edges, random lengths
    # into the data, and the data without its final padding.
    full = valid_cube_bytes()
    header_len = 2880
    data_end = header_len + int(np.prod(SHAPE)) * 4
    lengths = set(range(0, header_len + 1, 80)) | {1, 2879, 2881, data_end - 1, data_end,
                                                   len(full) - 1}
    lengths |= {int(n) for n in rng.integers(header_len, len(full), 30)}
    for n in sorted(lengths):
        yield "cube: truncated", f"cut at {n} of {len(full)} B", _write(target(), full[:n])
    comp = target()
    _write(comp, next(h for k, name, h in _multi_hdu_cases() if name.startswith("compressed cube")))
    comp_bytes = comp.read_bytes()
    comp.unlink()
    for n in sorted({int(n) for n in rng.integers(2880, len(comp_bytes), 10)}):
        yield ("cube: truncated", f"compressed cut at {n} of {len(comp_bytes)} B",
               _write(target(), comp_bytes[:n]))
    if l1448 is not None:
        real = Path(l1448).read_bytes()
        for n in (20000, 2880, 5760, len(real) // 2, len(real) - 2880):
            yield "cube: truncated", f"L1448 cut at {n} B", _write(target(), real[:n])

    # Random byte flips: in the header they garble keywords and values, in the data
    # they make odd (but readable) values.
    for i in range(40):
        buf = bytearray(full)
        for pos in rng.integers(0, header_len, int(rng.integers(1, 6))):
            buf[int(pos)] = int(rng.integers(32, 127))
        yield "cube: byte flips", f"header flip {i}", _write(target(), bytes(buf))
    for i in range(10):
        buf = bytearray(full)
        for pos in rng.integers(header_len, data_end, 20):
            buf[int(pos)] = int(rng.integers(0, 256))
        yield "cube: byte flips", f"data flip {i}", _write(target(), bytes(buf))

    # Paths that are not regular readable files.
    kind = "cube: not a file"
    yield kind, "no such file", folder / "missing.fits"
    d = folder / "a_folder.fits"
    d.mkdir()
    yield kind, "a directory", d
    dangling = folder / "dangling.fits"
    os.symlink(folder / "nowhere.fits", dangling)
    yield kind, "a dangling symlink", dangling
    if hasattr(os, "mkfifo"):  # reading a pipe would block: it must be refused unread
        pipe = folder / "a_pipe.fits"
        os.mkfifo(pipe)
        yield kind, "a named pipe", pipe
    unreadable = _write(target(), full)
    unreadable.chmod(0)
    yield kind, "an unreadable file", unreadable
