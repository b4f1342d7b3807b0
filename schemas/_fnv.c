/* Alertmanager's label-set fingerprint (FNV-1a 64) in C: the ingest hot path hashes every alert.
 * schemas/alert.py holds the reference implementation in Python and falls back to it when this
 * extension is not built; tests compare the two. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define FNV_OFFSET 0xcbf29ce484222325ULL
#define FNV_PRIME 0x100000001b3ULL

static inline uint64_t fnv_bytes(uint64_t h, const char *s, Py_ssize_t n) {
    for (Py_ssize_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= FNV_PRIME;
    }
    h ^= 0xff;
    h *= FNV_PRIME;
    return h;
}

typedef struct { const char *s; Py_ssize_t n; PyObject *key; } name_t;

static int cmp_names(const void *a, const void *b) {
    const name_t *x = a, *y = b;
    Py_ssize_t n = x->n < y->n ? x->n : y->n;
    int c = memcmp(x->s, y->s, (size_t)n);
    if (c != 0) return c;
    return (x->n > y->n) - (x->n < y->n);
}

/* fingerprint(labels: dict[str, str]) -> str: 16 lowercase hex digits. */
static PyObject *fingerprint(PyObject *self, PyObject *labels) {
    if (!PyDict_Check(labels)) {
        PyErr_SetString(PyExc_TypeError, "labels must be a dict");
        return NULL;
    }
    Py_ssize_t count = PyDict_Size(labels), pos = 0, i = 0;
    name_t stack_names[32];
    name_t *names = count <= 32 ? stack_names : PyMem_Malloc(sizeof(name_t) * (size_t)count);
    if (names == NULL) return PyErr_NoMemory();
    PyObject *key, *value;
    while (PyDict_Next(labels, &pos, &key, &value)) {
        if (!PyUnicode_Check(key) || !PyUnicode_Check(value)) {
            PyErr_SetString(PyExc_TypeError, "label names and values must be str");
            goto fail;
        }
        names[i].s = PyUnicode_AsUTF8AndSize(key, &names[i].n);
        if (names[i].s == NULL) goto fail;
        names[i].key = key;
        i++;
    }
    qsort(names, (size_t)count, sizeof(name_t), cmp_names);
    uint64_t h = FNV_OFFSET;
    for (i = 0; i < count; i++) {
        h = fnv_bytes(h, names[i].s, names[i].n);
        Py_ssize_t vn;
        const char *v = PyUnicode_AsUTF8AndSize(PyDict_GetItem(labels, names[i].key), &vn);
        if (v == NULL) goto fail;
        h = fnv_bytes(h, v, vn);
    }
    if (names != stack_names) PyMem_Free(names);
    char out[17];
    snprintf(out, sizeof out, "%016llx", (unsigned long long)h);
    return PyUnicode_FromStringAndSize(out, 16);
fail:
    if (names != stack_names) PyMem_Free(names);
    return NULL;
}

static PyMethodDef methods[] = {
    {"fingerprint", fingerprint, METH_O, "Alertmanager's FNV-1a 64 fingerprint of a label dict."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_fnv", NULL, -1, methods};

PyMODINIT_FUNC PyInit__fnv(void) { return PyModule_Create(&module); }
