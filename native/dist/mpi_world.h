// The MPI communicator (mpi_communicator.cc), compiled only when the build found MPI
// (MEDIX_HAVE_MPI); world.cc decides when to open it.
#pragma once
#include <memory>
#include <string>

#include "communicator.h"

namespace medix {

// Initialises MPI (once per process; finalized at exit) and returns MPI_COMM_WORLD's communicator.
std::unique_ptr<Communicator> open_mpi_world();
std::string mpi_version_string();

}  // namespace medix
