/* mpi_hello: the smallest MPI program that proves a launch works: every rank adds its rank
 * number with MPI_Allreduce and rank 0 prints "mpi_hello: N ranks, sum S". For the slurm
 * suite's harness case (srun --mpi=pmix), independent of maec. */
#include <mpi.h>
#include <stdio.h>

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    int rank, size, sum = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    MPI_Allreduce(&rank, &sum, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    if (rank == 0)
        printf("mpi_hello: %d ranks, sum %d\n", size, sum);
    MPI_Finalize();
    return 0;
}
