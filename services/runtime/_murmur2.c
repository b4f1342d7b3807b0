/* Kafka's default partitioner hash (murmur2, as the Java client computes it) in C: ingest picks a
 * partition for every alert. services/runtime/partition.py falls back to aiokafka's pure-Python
 * murmur2 when this extension is not built; tests compare the two. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

static uint32_t murmur2(const unsigned char *data, Py_ssize_t length) {
    const uint32_t m = 0x5bd1e995;
    const int r = 24;
    uint32_t h = 0x9747b28c ^ (uint32_t)length;
    Py_ssize_t length4 = length / 4;
    for (Py_ssize_t i = 0; i < length4; i++) {
        const unsigned char *p = data + i * 4;
        uint32_t k = (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
                     ((uint32_t)p[3] << 24);
        k *= m;
        k ^= k >> r;
        k *= m;
        h *= m;
        h ^= k;
    }
    const unsigned char *tail = data + (length & ~(Py_ssize_t)3);
    switch (length % 4) {
        case 3: h ^= (uint32_t)tail[2] << 16; /* fall through */
        case 2: h ^= (uint32_t)tail[1] << 8;  /* fall through */
        case 1: h ^= (uint32_t)tail[0]; h *= m;
    }
    h ^= h >> 13;
    h *= m;
    h ^= h >> 15;
    return h;
}

/* murmur2(key: bytes) -> int, unsigned 32-bit (as aiokafka returns it). */
static PyObject *py_murmur2(PyObject *self, PyObject *arg) {
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0) return NULL;
    uint32_t h = murmur2(view.buf, view.len);
    PyBuffer_Release(&view);
    return PyLong_FromUnsignedLong((unsigned long)h);
}

static PyMethodDef methods[] = {
    {"murmur2", py_murmur2, METH_O, "Kafka murmur2 hash of a key (unsigned 32-bit)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_murmur2", NULL, -1, methods};

PyMODINIT_FUNC PyInit__murmur2(void) { return PyModule_Create(&module); }
