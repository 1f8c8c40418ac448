#ifndef TESSERA_CSODIUM_SHIM_H
#define TESSERA_CSODIUM_SHIM_H
#include <sodium.h>
#endif
