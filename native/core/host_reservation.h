// Host address space for Backend::reserve (reservation.h): an anonymous mapping that costs no memory
// until written, whose pages go back to the system when the last acquisition over them is released.
// The CPU backend's reservations, and the base of the device-memory guard's.
#pragma once
#include <memory>

#include "reservation.h"

namespace medix {

std::unique_ptr<Reservation> host_reservation(int64_t bytes);

}  // namespace medix
